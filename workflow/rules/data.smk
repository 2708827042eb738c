# Data preparation: the synthetic SPEC §5 tree (embedded default). With real data, paths.data_root
# points at an existing folder and this rule is simply not needed by any job.


rule data_synth:
    output:
        root=directory("data/synthetic"),
    params:
        size=P["synth"]["size"],
        seed=P["seed"],
    log:
        log("data_synth"),
    benchmark:
        bench("data_synth")
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        "pointsd data synth --out {output.root} --size {params.size} --seed {params.seed} > {log} 2>&1"
