# Linear probe of the frozen backbone beside the same architecture at random init (the table's probe row).


rule probe:
    input:
        **stage_input("probe"),
    output:
        **stage_output("probe"),
    params:
        launch=launcher("probe"),
        code=stage_code("probe"),
        args=stage_args("probe"),
    log:
        log("probe"),
    benchmark:
        bench("probe")
    threads: stage_threads("probe")
    resources:
        **stage_resources("probe"),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"
