# Classification fine-tuning (SPEC §4, Point-MAE protocol) from the stage-2 backbone:
# ScanObjectNN (three variants) and ModelNet40 on paths.data_root, plus a short run on the real
# ModelNet10 (paths.modelnet10) so that the mechanics are also exercised on real shapes.


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
    threads: 2
    resources:
        gpu=P["gpus"],
        mem_mb=8000,
    shell:
        "{params.launch} finetune --task {wildcards.task} --data-root {input.data} --data-profile {params.data_profile}"
        " --modelnet40-points {params.modelnet40_points}"
        " --init {params.init} --out {output.run} {params.flags} > {log} 2>&1"


rule finetune_modelnet10:
    input:
        data=P["paths"]["modelnet10"],
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
        mem_mb=8000,
    shell:
        "{params.launch} finetune --task modelnet10 --data-root {input.data} --data-profile real"
        " --init {params.init} --out {output.run} {params.flags} > {log} 2>&1"
