# Image assets for pre-training: ULIP-layout renders of the ShapeNet-55 training clouds and the tiny
# Stable Diffusion folder. With the paper profile, paths.renders and paths.sd point at the real
# ULIP renders and a local SD v1.5 folder, and these rules are not needed by any job.


rule render:
    input:
        **stage_input("render"),
    output:
        renders=report(
            directory(STAGES.stages["render"]["outs"]["renders"]),
            patterns=["contact_sheet{suffix}.png"],
            caption="../report/render.rst",
            category="Rendered views",
        ),
    params:
        launch=launcher("render"),
        code=stage_code("render"),
        args=stage_args("render"),
    log:
        log("render"),
    benchmark:
        bench("render")
    threads: stage_threads("render")
    resources:
        **stage_resources("render"),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"


rule sd_tiny:
    input:
        **stage_input("sd_tiny"),
    output:
        **stage_output("sd_tiny"),
    params:
        launch=launcher("sd_tiny"),
        code=stage_code("sd_tiny"),
        args=stage_args("sd_tiny"),
    log:
        log("sd_tiny"),
    benchmark:
        bench("sd_tiny")
    threads: stage_threads("sd_tiny")
    resources:
        **stage_resources("sd_tiny"),
    shell:
        "{params.launch} {params.args} > {log} 2>&1"
