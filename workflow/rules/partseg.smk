# ShapeNetPart part segmentation (SPEC §4) from the stage-2 backbone.


rule partseg:
    input:
        data=P["paths"]["data_root"],
        init=init_input(),
    output:
        run=directory("runs/partseg"),
    params:
        init=P["init"],
        flags=partseg_flags(),
        data_profile=P["data_profile"],
    log:
        log("partseg"),
    benchmark:
        bench("partseg")
    threads: 1
    resources:
        gpu=1,
        mem_mb=4000,
    shell:
        "pointsd partseg --data-root {input.data} --data-profile {params.data_profile}"
        " --init {params.init} --out {output.run} {params.flags} > {log} 2>&1"
