from audiorep.tasks.rundir import run_name, sweep_group


def test_same_overrides_in_any_order_give_the_same_name():
    assert run_name(["model.beta=4", "seed=1"]) == run_name(["seed=1", "model.beta=4"])


def test_different_values_give_different_names():
    assert run_name(["model.beta=4"]) != run_name(["model.beta=8"])


def test_excluded_keys_and_their_children_do_not_change_the_name():
    exclude = ["resume", "logger", "trainer.devices"]
    base = run_name(["model.beta=4"], exclude)
    assert (
        run_name(
            [
                "model.beta=4",
                "resume=false",
                "logger=csv",
                "logger.wandb.offline=false",
                "trainer.devices=2",
            ],
            exclude,
        )
        == base
    )
    # `experiment` names the parent folder already.
    assert run_name(["experiment=atiam_beta_vae", "model.beta=4"], exclude) == base


def test_no_overrides_is_default_and_names_are_filesystem_safe():
    assert run_name([]) == "default"
    name = run_name(["data.root=/some/path with spaces", "model.hidden_dims=[1,2]"])
    assert "/" not in name and " " not in name


def test_sweep_group_ignores_the_multirun_flag():
    assert sweep_group(["-m", "model.beta=1,4"]) == sweep_group(["model.beta=1,4", "--multirun"])
    assert sweep_group(["model.beta=1,4"]) != sweep_group(["model.beta=1,8"])
