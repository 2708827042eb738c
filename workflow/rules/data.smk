# Data preparation: the synthetic SPEC §5 tree (embedded default). With real data, paths.data_root
# points at an existing folder and this rule is simply not needed by any job.


rule data_synth:
    output:
        **stage_output("data_synth"),
    params:
        launch=launcher("data_synth"),
        code=stage_code("data_synth"),
        args=stage_args("data_synth"),
    log:
        log("data_synth"),
    benchmark:
        bench("data_synth")
    threads: stage_threads("data_synth")
    resources:
        **stage_resources("data_synth"),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"
