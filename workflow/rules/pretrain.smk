# Pre-training (SPEC §2-§3): stage 1 teaches the point encoder to condition the frozen SD UNet;
# stage 2 distils the UNet's last down-block feature into a fresh backbone (the model used
# downstream). Each run folder is one output: a changed parameter re-runs it from scratch.


rule pretrain_stage1:
    input:
        data=P["paths"]["data_root"],
        renders=P["paths"]["renders"],
        sd=P["paths"]["sd"],
    output:
        run=directory("runs/pretrain/stage1"),
    params:
        launch=launcher(),
        flags=pretrain_flags(),
    log:
        log("pretrain_stage1"),
    benchmark:
        bench("pretrain_stage1")
    threads: 2
    resources:
        gpu=P["gpus"],
        mem_mb=8000,
    shell:
        "{params.launch} pretrain --stage 1 --data-root {input.data} --renders {input.renders} --sd {input.sd}"
        " --out {output.run} {params.flags} > {log} 2>&1"


rule pretrain_stage2:
    input:
        data=P["paths"]["data_root"],
        renders=P["paths"]["renders"],
        sd=P["paths"]["sd"],
        stage1=rules.pretrain_stage1.output.run,
    output:
        run=directory("runs/pretrain/stage2"),
    params:
        launch=launcher(),
        flags=pretrain_flags(),
    log:
        log("pretrain_stage2"),
    benchmark:
        bench("pretrain_stage2")
    threads: 2
    resources:
        gpu=P["gpus"],
        mem_mb=8000,
    shell:
        "{params.launch} pretrain --stage 2 --data-root {input.data} --renders {input.renders} --sd {input.sd}"
        " --stage1 {input.stage1} --out {output.run} {params.flags} > {log} 2>&1"
