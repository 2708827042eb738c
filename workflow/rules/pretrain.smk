# Pre-training (SPEC §2-§3): stage 1 teaches the point encoder to condition the frozen SD UNet;
# stage 2 distils the UNet's last down-block feature into a fresh backbone (the model used
# downstream). Each run folder is one output: a changed parameter re-runs it from scratch.


rule pretrain_stage1:
    input:
        **stage_input("pretrain_stage1"),
    output:
        **stage_output("pretrain_stage1"),
    params:
        launch=launcher("pretrain_stage1"),
        code=stage_code("pretrain_stage1"),
        args=stage_args("pretrain_stage1"),
    log:
        log("pretrain_stage1"),
    benchmark:
        bench("pretrain_stage1")
    threads: stage_threads("pretrain_stage1")
    resources:
        **stage_resources("pretrain_stage1"),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"


rule pretrain_stage2:
    input:
        **stage_input("pretrain_stage2"),
    output:
        **stage_output("pretrain_stage2"),
    params:
        launch=launcher("pretrain_stage2"),
        code=stage_code("pretrain_stage2"),
        args=stage_args("pretrain_stage2"),
    log:
        log("pretrain_stage2"),
    benchmark:
        bench("pretrain_stage2")
    threads: stage_threads("pretrain_stage2")
    resources:
        **stage_resources("pretrain_stage2"),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"
