# ModelNet40 few-shot (SPEC §4): one job per (way, shot, fold) of fewshot.grid, then one summary
# with mean ± std over folds per setting.


rule fewshot:
    input:
        data=P["paths"]["data_root"],
        init=init_input(),
    output:
        run=directory("runs/fewshot/{way}w{shot}s/fold{fold}"),
    wildcard_constraints:
        way=r"\d+",
        shot=r"\d+",
        fold=r"\d+",
    params:
        init=P["init"],
        flags=fewshot_flags(),
        data_profile=P["data_profile"],
    log:
        log("fewshot_{way}w{shot}s_fold{fold}"),
    benchmark:
        bench("fewshot_{way}w{shot}s_fold{fold}")
    threads: 1
    resources:
        gpu=1,
        mem_mb=4000,
    shell:
        "pointsd fewshot --way {wildcards.way} --shot {wildcards.shot} --fold {wildcards.fold}"
        " --data-root {input.data} --data-profile {params.data_profile}"
        " --init {params.init} --out {output.run} {params.flags} > {log} 2>&1"


rule fewshot_aggregate:
    input:
        runs=FEWSHOT_RUNS,
    output:
        summary="results/fewshot.json",
    params:
        grid=fewshot_grid_flags(),
    log:
        log("fewshot_aggregate"),
    benchmark:
        bench("fewshot_aggregate")
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "pointsd fewshot-aggregate --root runs/fewshot {params.grid} --out {output.summary} > {log} 2>&1"
