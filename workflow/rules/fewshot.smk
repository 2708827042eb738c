# ModelNet40 few-shot (SPEC §4): one job per (way, shot, fold) of fewshot.grid, then one summary
# with mean ± std over folds per setting.


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
        gpu=1,
        mem_mb=4000,
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
        mem_mb=1000,
    shell:
        "{params.launch} {params.args} > {log} 2>&1"
