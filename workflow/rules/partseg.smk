# ShapeNetPart part segmentation (SPEC §4) from the stage-2 backbone.


rule partseg:
    input:
        **stage_input("partseg"),
    output:
        **stage_output("partseg"),
    params:
        launch=launcher("partseg"),
        code=stage_code("partseg"),
        args=stage_args("partseg"),
    log:
        log("partseg"),
    benchmark:
        bench("partseg")
    threads: stage_threads("partseg")
    resources:
        **stage_resources("partseg", gpu=1),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"
