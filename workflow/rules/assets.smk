# Image assets for pre-training: ULIP-layout renders of the ShapeNet-55 training clouds and the tiny
# Stable Diffusion folder. With the paper profile, paths.renders and paths.sd point at the real
# ULIP renders and a local SD v1.5 folder, and these rules are not needed by any job.


rule render:
    input:
        data=P["paths"]["data_root"],
    output:
        renders=report(
            directory("data/renders"),
            patterns=["contact_sheet{suffix}.png"],
            caption="../report/render.rst",
            category="Rendered views",
        ),
    params:
        views=P["render"]["views"],
        size=P["render"]["size"],
        seed=P["seed"],
    log:
        log("render"),
    benchmark:
        bench("render")
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        "pointsd render --points {input.data}/ShapeNet55-34/shapenet_pc"
        " --split-list {input.data}/ShapeNet55-34/ShapeNet-55/train.txt --out {output.renders}"
        " --views {params.views} --size {params.size} --seed {params.seed} > {log} 2>&1"


rule sd_tiny:
    output:
        sd=directory("models/sd-tiny"),
    params:
        seed=P["seed"],
    log:
        log("sd_tiny"),
    benchmark:
        bench("sd_tiny")
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        "pointsd sd tiny --out {output.sd} --seed {params.seed} > {log} 2>&1"
