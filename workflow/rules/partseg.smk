# ShapeNetPart part segmentation (SPEC §4) from the stage-2 backbone.


rule partseg:
    input:
        data=P["paths"]["data_root"],
        stage2=rules.pretrain_stage2.output.run,
    output:
        run=directory("runs/partseg"),
    params:
        flags=partseg_flags(),
        data_profile=P["data_profile"],
    log:
        log("partseg"),
    benchmark:
        bench("partseg")
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
    shell:
        "pointsd partseg --data-root {input.data} --data-profile {params.data_profile}"
        " --init {input.stage2}/ckpt-stage2.pt --out {output.run} {params.flags} > {log} 2>&1"
