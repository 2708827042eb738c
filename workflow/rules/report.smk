# The results table (one row per paper cell, read from every benchmark's metrics file) and the
# training curves of every run, both in `snakemake --report report.html`. The table takes the curves
# as an input, so `snakemake results/table.md` builds everything `snakemake --report` bundles.


rule report_curves:
    input:
        **stage_input("report_curves"),
    output:
        figures=report(
            directory(STAGES.stages["report_curves"]["outs"]["figures"]),
            patterns=["{name}.png"],
            caption="../report/curves.rst",
            category="Training curves",
        ),
    params:
        launch=launcher("report_curves"),
        code=stage_code("report_curves"),
        args=stage_args("report_curves"),
    log:
        log("report_curves"),
    benchmark:
        bench("report_curves")
    threads: stage_threads("report_curves")
    resources:
        **stage_resources("report_curves"),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"


rule report_table:
    input:
        **stage_input("report_table"),
    output:
        table=report(STAGES.stages["report_table"]["outs"]["table"], caption="../report/table.rst", category="Results"),
        json=STAGES.stages["report_table"]["outs"]["json"],
    params:
        launch=launcher("report_table"),
        code=stage_code("report_table"),
        args=stage_args("report_table"),
    log:
        log("report_table"),
    benchmark:
        bench("report_table")
    threads: stage_threads("report_table")
    resources:
        **stage_resources("report_table"),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"
