# The results table (one row per paper cell, read from every benchmark's metrics file) and the
# training curves of every run, both in `snakemake --report report.html`.


rule report_table:
    input:
        finetune=CLASSIFICATION_RUNS,
        scratch=SCRATCH_RUNS,
        fewshot=rules.fewshot_aggregate.output.summary,
        partseg=rules.partseg.output.run,
        # The curves belong to the results: `snakemake results/table.md` builds them, so that
        # `snakemake --report` finds every file it bundles.
        curves="results/curves",
    output:
        table=report("results/table.md", caption="../report/table.rst", category="Results"),
        json="results/table.json",
    params:
        metrics=table_metrics(),
    log:
        log("report_table"),
    benchmark:
        bench("report_table")
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "pointsd report table --metrics {params.metrics} --out {output.table} > {log} 2>&1"


rule report_curves:
    input:
        runs=curve_runs(),
    output:
        figures=report(
            directory("results/curves"),
            patterns=["{name}.png"],
            caption="../report/curves.rst",
            category="Training curves",
        ),
    log:
        log("report_curves"),
    benchmark:
        bench("report_curves")
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "pointsd report curves --runs {input.runs} --out {output.figures} > {log} 2>&1"
