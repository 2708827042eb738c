"""Complete flag sets for calling the `pointsd` commands by hand in tests.

The pipeline passes every setting it owns from params.yaml (the CLI keeps no default for them); a
test passes these (the SPEC's values where a test does not care), then its own flags, which win:
argparse keeps the last value of a repeated flag."""

RUN = ["--device", "cpu", "--speed", "fast", "--seed", "0", "--profile", "test", "--data-profile", "synthetic", "--no-progress"]
BACKBONE = ["--trans-dim", "32", "--depth", "1", "--num-heads", "2", "--encoder-dims", "32", "--patch-width", "128",
            "--drop-path-rate", "0.1", "--num-group", "8", "--group-size", "8"]
SCHEDULE = ["--optimizer", "sgd", "--momentum", "0.9", "--weight-decay", "1e-4", "--warmup-epochs", "0",
            "--grad-clip", "10", "--protocol", "paper", "--oversample", "1.2", "--scratch-init", "point_mae"]
# finetune / fewshot: a ModelNet-like task, one epoch
CLASSIFICATION = [*RUN, *BACKBONE, *SCHEDULE, "--init", "scratch", "--npoints", "64", "--lr", "0.017", "--epochs", "1",
                  "--batch-size", "8", "--augment", "scale_translate"]
FINETUNE = [*CLASSIFICATION, "--votes", "0", "--modelnet40-points", "96"]
PARTSEG = [*RUN, *BACKBONE, "--init", "scratch", "--protocol", "paper", "--epochs", "1", "--batch-size", "4", "--npoints", "64",
           "--lr", "2e-4", "--weight-decay", "0.05", "--warmup-epochs", "0", "--grad-clip", "10",
           "--augment", "scale_translate"]
PRETRAIN = [*RUN, *BACKBONE, "--epochs", "1", "--batch-size", "4", "--lr", "1.25e-4", "--weight-decay", "0.01",
            "--warmup-epochs", "0", "--grad-clip", "1.0", "--npoints", "64", "--image-size", "32", "--mix-prob", "0.5",
            "--mix-resize", "nearest", "--point-subset", "first", "--probe-every", "0", "--probe-points", "64", "--max-steps-per-epoch", "2",
            "--t-min", "500", "--t-max", "1000", "--resampler-dim", "768", "--resampler-depth", "3",
            "--resampler-dim-head", "64", "--resampler-heads", "12", "--resampler-ff-mult", "4"]
