# Classification fine-tuning (SPEC §4, Point-MAE protocol) from the stage-2 backbone:
# ScanObjectNN (three variants) and ModelNet40 on paths.data_root, the same tasks from scratch with
# the same budget (the table's Scratch column, finetune_common.scratch_baseline), and the real
# ModelNet10 (paths.modelnet10) when it exists.


rule finetune:
    input:
        data=P["paths"]["data_root"],
        init=init_input(),
    output:
        run=directory("runs/finetune/{task}"),
    wildcard_constraints:
        task="|".join(FINETUNE_TASKS),
    params:
        launch=launcher(),
        init=P["init"],
        flags=lambda w: finetune_flags(P["finetune"][w.task]),
        data_profile=P["data_profile"],
        modelnet40_points=P["finetune_common"]["modelnet40_points"],
    log:
        log("finetune_{task}"),
    benchmark:
        bench("finetune_{task}")
    threads: 1
    resources:
        gpu=P["gpus"],
        mem_mb=4000,
    shell:
        "{params.launch} finetune --task {wildcards.task} --data-root {input.data} --data-profile {params.data_profile}"
        " --modelnet40-points {params.modelnet40_points}"
        " --init {params.init} --out {output.run} {params.flags} > {log} 2>&1"


rule finetune_scratch:
    input:
        data=P["paths"]["data_root"],
    output:
        run=directory("runs/finetune_scratch/{task}"),
    wildcard_constraints:
        task="|".join(FINETUNE_TASKS),
    params:
        launch=launcher(),
        flags=lambda w: finetune_flags(P["finetune"][w.task]),
        data_profile=P["data_profile"],
        modelnet40_points=P["finetune_common"]["modelnet40_points"],
    log:
        log("finetune_scratch_{task}"),
    benchmark:
        bench("finetune_scratch_{task}")
    threads: 1
    resources:
        gpu=P["gpus"],
        mem_mb=4000,
    shell:
        "{params.launch} finetune --task {wildcards.task} --data-root {input.data} --data-profile {params.data_profile}"
        " --modelnet40-points {params.modelnet40_points}"
        " --init scratch --out {output.run} {params.flags} > {log} 2>&1"


if MODELNET10_PRESENT:

    rule finetune_modelnet10:
        input:
            data=MODELNET10,
            init=init_input(),
        output:
            run=directory("runs/finetune/modelnet10"),
        params:
            launch=launcher(),
            init=P["init"],
            flags=finetune_flags(P["modelnet10"]),
        log:
            log("finetune_modelnet10"),
        benchmark:
            bench("finetune_modelnet10")
        threads: 2
        resources:
            gpu=P["gpus"],
            mem_mb=4000,
        shell:
            "{params.launch} finetune --task modelnet10 --data-root {input.data} --data-profile real"
            " --init {params.init} --out {output.run} {params.flags} > {log} 2>&1"

else:

    rule finetune_modelnet10:
        output:
            run=directory("runs/finetune/modelnet10"),
        params:
            data=MODELNET10,
            hint="put train.h5, test.h5 and shape_names.txt (README: Real data) there or set paths.modelnet10",
        log:
            log("finetune_modelnet10"),
        benchmark:
            bench("finetune_modelnet10")
        threads: 1
        resources:
            mem_mb=1000,
        shell:
            "pointsd report not-run --task modelnet10 --reason 'no data at {params.data}'"
            " --hint '{params.hint}' --out {output.run} > {log} 2>&1"
