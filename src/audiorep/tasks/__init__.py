"""Entry-point logic: build from config, train, evaluate. The top layer of DESIGN.md."""

from audiorep.tasks.rundir import register_resolvers

# Registered on import so that Hydra can name run directories in every process that
# resolves a config, joblib and SLURM workers included.
register_resolvers()
