# ModelNet40 few-shot (SPEC §4): one job per (way, shot, fold) of fewshot.grid, then one summary
# with mean ± std over folds per setting; the same folds from random init for the Scratch column
# (finetune_common.scratch_baseline).


rule fewshot:
    input:
        **stage_input("fewshot"),
    output:
        **stage_output("fewshot"),
    wildcard_constraints:
        way=r"\d+",
        shot=r"\d+",
        fold=r"\d+",
    params:
        launch=launcher("fewshot"),
        code=stage_code("fewshot"),
        args=stage_args("fewshot"),
    log:
        log("fewshot_{way}w{shot}s_fold{fold}"),
    benchmark:
        bench("fewshot_{way}w{shot}s_fold{fold}")
    threads: stage_threads("fewshot")
    resources:
        **stage_resources("fewshot", gpu=1),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"


rule fewshot_aggregate:
    input:
        **stage_input("fewshot_aggregate"),
    output:
        **stage_output("fewshot_aggregate"),
    params:
        launch=launcher("fewshot_aggregate"),
        code=stage_code("fewshot_aggregate"),
        args=stage_args("fewshot_aggregate"),
    log:
        log("fewshot_aggregate"),
    benchmark:
        bench("fewshot_aggregate")
    threads: stage_threads("fewshot_aggregate")
    resources:
        **stage_resources("fewshot_aggregate"),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"


if STAGES.included("fewshot_scratch"):

    rule fewshot_scratch:
        input:
            **stage_input("fewshot_scratch"),
        output:
            **stage_output("fewshot_scratch"),
        wildcard_constraints:
            way=r"\d+",
            shot=r"\d+",
            fold=r"\d+",
        params:
            launch=launcher("fewshot_scratch"),
            code=stage_code("fewshot_scratch"),
            args=stage_args("fewshot_scratch"),
        log:
            log("fewshot_scratch_{way}w{shot}s_fold{fold}"),
        benchmark:
            bench("fewshot_scratch_{way}w{shot}s_fold{fold}")
        threads: stage_threads("fewshot_scratch")
        resources:
            **stage_resources("fewshot_scratch", gpu=1),
        shell:
            "{params.launch} {params.args} > {log} 2>&1"


if STAGES.included("fewshot_scratch_aggregate"):

    rule fewshot_scratch_aggregate:
        input:
            **stage_input("fewshot_scratch_aggregate"),
        output:
            **stage_output("fewshot_scratch_aggregate"),
        params:
            launch=launcher("fewshot_scratch_aggregate"),
            code=stage_code("fewshot_scratch_aggregate"),
            args=stage_args("fewshot_scratch_aggregate"),
        log:
            log("fewshot_scratch_aggregate"),
        benchmark:
            bench("fewshot_scratch_aggregate")
        threads: stage_threads("fewshot_scratch_aggregate")
        resources:
            **stage_resources("fewshot_scratch_aggregate"),
        shell:
            "{params.launch} {params.args} > {log} 2>&1"
