# Classification fine-tuning (SPEC §4, Point-MAE protocol) from the stage-2 backbone:
# ScanObjectNN (three variants) and ModelNet40 on paths.data_root, the same tasks from scratch with
# the same budget (the table's Scratch column, finetune_common.scratch_baseline), and the real
# ModelNet10 (paths.modelnet10) when it exists, also from scratch; when it does not, its row records
# "not run" and why.


rule finetune:
    input:
        **stage_input("finetune"),
    output:
        **stage_output("finetune"),
    wildcard_constraints:
        key="|".join(FINETUNE_TASKS),
    params:
        launch=launcher("finetune"),
        code=stage_code("finetune"),
        args=stage_args("finetune"),
    log:
        log("finetune_{key}"),
    benchmark:
        bench("finetune_{key}")
    threads: stage_threads("finetune")
    resources:
        **stage_resources("finetune"),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"


rule finetune_scratch:
    input:
        **stage_input("finetune_scratch"),
    output:
        **stage_output("finetune_scratch"),
    wildcard_constraints:
        key="|".join(FINETUNE_TASKS),
    params:
        launch=launcher("finetune_scratch"),
        code=stage_code("finetune_scratch"),
        args=stage_args("finetune_scratch"),
    log:
        log("finetune_scratch_{key}"),
    benchmark:
        bench("finetune_scratch_{key}")
    threads: stage_threads("finetune_scratch")
    resources:
        **stage_resources("finetune_scratch"),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"


if STAGES.included("finetune_modelnet10"):

    rule finetune_modelnet10:
        input:
            **stage_input("finetune_modelnet10"),
        output:
            **stage_output("finetune_modelnet10"),
        params:
            launch=launcher("finetune_modelnet10"),
            code=stage_code("finetune_modelnet10"),
            args=stage_args("finetune_modelnet10"),
        log:
            log("finetune_modelnet10"),
        benchmark:
            bench("finetune_modelnet10")
        threads: stage_threads("finetune_modelnet10")
        resources:
            **stage_resources("finetune_modelnet10"),
        shell:
            "{params.launch} {params.args} > {log} 2>&1"

else:

    rule modelnet10_not_run:
        output:
            **stage_output("modelnet10_not_run"),
        params:
            launch=launcher("modelnet10_not_run"),
            code=stage_code("modelnet10_not_run"),
            args=stage_args("modelnet10_not_run"),
        log:
            log("finetune_modelnet10"),
        benchmark:
            bench("finetune_modelnet10")
        threads: stage_threads("modelnet10_not_run")
        resources:
            **stage_resources("modelnet10_not_run"),
        shell:
            "{params.launch} {params.args} > {log} 2>&1"


if STAGES.included("finetune_modelnet10_scratch"):

    rule finetune_modelnet10_scratch:
        input:
            **stage_input("finetune_modelnet10_scratch"),
        output:
            **stage_output("finetune_modelnet10_scratch"),
        params:
            launch=launcher("finetune_modelnet10_scratch"),
            code=stage_code("finetune_modelnet10_scratch"),
            args=stage_args("finetune_modelnet10_scratch"),
        log:
            log("finetune_modelnet10_scratch"),
        benchmark:
            bench("finetune_modelnet10_scratch")
        threads: stage_threads("finetune_modelnet10_scratch")
        resources:
            **stage_resources("finetune_modelnet10_scratch"),
        shell:
            "{params.launch} {params.args} > {log} 2>&1"
