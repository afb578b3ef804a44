"""WandbArtifactIOManager end to end: real Dagster runs (materialize, instance_for_test) on a real workspace."""

import pickle
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

import wandb_dagster as wandb
from wandb_dagster import Artifact
from wandb_dagster.dagster import Reference, WandbIOManagerError, WandbResource, collection_name


def _versions(resource: WandbResource, name: str) -> list[Any]:
    api = resource.api()
    store = api._ws.store
    coll = store.collection("tester", "pipelines", name)
    return [] if coll is None else store.collection_versions(coll.pk)


# ------------------------------------------------------------------------------------- objects and runs


def test_pickled_output_metadata_and_shared_run(mat_meta, resources, instance, wandb_resource):
    @dg.asset(key_prefix=["warehouse", "bikes"], code_version="3")
    def counts(wandb: WandbResource) -> dict:
        wandb.run().log({"rows": 42})
        return {"a": 1, "b": [1, 2, 3]}

    @dg.asset(ins={"counts": dg.AssetIn(key=["warehouse", "bikes", "counts"])})
    def total(counts: dict) -> int:
        return counts["a"] + sum(counts["b"])

    result = dg.materialize([counts, total], resources=resources, instance=instance)
    assert result.success
    assert result.output_for_node("total") == 7

    meta = mat_meta(result, ["warehouse", "bikes", "counts"])
    assert meta["wandb/collection"] == "tester/pipelines/warehouse.bikes.counts"
    assert meta["wandb/artifact"] == "tester/pipelines/warehouse.bikes.counts:v0"
    assert meta["wandb/version"] == "v0"
    assert meta["wandb/kind"] == "object" and meta["wandb/serializer"] == "pickle"
    assert meta["wandb/file_count"] == 1
    assert meta["wandb/aliases"] == ["latest"]
    assert meta["wandb/links"] == []
    art = wandb_resource.artifact("warehouse.bikes.counts:v0")
    assert meta["wandb/digest"] == art.digest and meta["wandb/size"] == art.size and meta["wandb/artifact_id"] == art.id
    assert meta["wandb/storage"] == wandb_resource.api()._ws.blobs.root
    assert "password" not in meta["wandb/workspace"]

    # The metric logged in the asset and the artifact of its output are in the same tracking run.
    api = wandb_resource.api()
    store = api._ws.store
    entity, project, run_id = meta["wandb/run"].split("/")
    record = store.get_run(entity, project, run_id)
    assert record.group == result.run_id
    assert record.job_type == "warehouse/bikes/counts"
    assert record.config["dagster"]["run_id"] == result.run_id
    assert record.config["dagster"]["asset_keys"] == ["warehouse/bikes/counts"]
    assert record.config["dagster"]["code_versions"] == {"warehouse/bikes/counts": "3"}
    assert record.config["dagster"]["job"] == result.job_def.name
    assert [v.id for v in store.run_outputs(record.pk)] == [art.id]
    assert [row["rows"] for row in store.history(record.pk)] == [42]
    assert record.state == "finished"
    # The downstream step has its own run, which used the upstream version (lineage).
    down = mat_meta(result, ["total"])
    down_record = store.get_run(*down["wandb/run"].split("/"))
    assert down_record.pk != record.pk and down_record.group == result.run_id
    assert [v.id for v in store.run_inputs(down_record.pk)] == [art.id]


def test_collection_names_are_injective_in_practice(resources, instance, wandb_resource):
    @dg.asset(key=["a", "b"])
    def ab() -> str:
        return "nested"

    @dg.asset(key=["a_b"])
    def a_b() -> str:
        return "flat"

    assert dg.materialize([ab, a_b], resources=resources, instance=instance).success
    assert collection_name(["a", "b"]) != collection_name(["a_b"])
    assert [v.version for v in _versions(wandb_resource, "a.b")] == ["v0"]
    assert [v.version for v in _versions(wandb_resource, "a_b")] == ["v0"]


@pytest.mark.parametrize(
    "serializer,value,check",
    [
        ("cloudpickle", None, lambda v: v(3) == 9),
        ("joblib", {"w": list(range(10))}, lambda v: v == {"w": list(range(10))}),
        ("json", {"b": 1, "a": [1.5, "x"]}, lambda v: v == {"b": 1, "a": [1.5, "x"]}),
    ],
)
def test_serializers_round_trip(mat_meta, resources, instance, wandb_resource, serializer, value, check):
    value = (lambda x: x * x) if value is None else value

    @dg.asset(metadata={"wandb": {"serializer": serializer}})
    def thing() -> Any:
        return value

    @dg.asset
    def use(thing: Any) -> bool:
        return check(thing)

    result = dg.materialize([thing, use], resources=resources, instance=instance)
    assert result.output_for_node("use") is True
    meta = mat_meta(result, ["thing"])
    assert meta["wandb/serializer"] == serializer
    entry = wandb_resource.artifact("thing:latest").manifest.entries
    assert list(entry) == [meta["wandb/entry"]]


def test_parquet_for_pandas_and_pyarrow(resources, instance):
    import pandas as pd  # the dev extra installs the optional serializers: missing ones fail here
    import pyarrow as pa

    @dg.asset(metadata={"wandb": {"serializer": "parquet"}})
    def frame() -> Any:
        return pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})

    @dg.asset(metadata={"wandb": {"serializer": "parquet"}})
    def table() -> Any:
        return pa.table({"z": [1.5, 2.5]})

    @dg.asset
    def check(frame: Any, table: Any) -> tuple:
        return type(frame).__name__, frame["x"].tolist(), type(table).__name__, table.column("z").to_pylist()

    result = dg.materialize([frame, table, check], resources=resources, instance=instance)
    assert result.output_for_node("check") == ("DataFrame", [1, 2, 3], "Table", [1.5, 2.5])


def test_parquet_refuses_other_objects_and_names_the_asset(resources, instance, wandb_resource):
    @dg.asset(metadata={"wandb": {"serializer": "parquet"}})
    def not_a_table() -> Any:
        return {"x": 1}

    with pytest.raises(WandbIOManagerError, match=r"asset 'not_a_table'.*parquet serializer takes a pandas"):
        dg.materialize([not_a_table], resources=resources, instance=instance)
    assert _versions(wandb_resource, "not_a_table") == []


def test_serialization_failure_names_asset_partition_and_cause_and_leaves_no_version(resources, instance, wandb_resource):
    parts = dg.StaticPartitionsDefinition(["north", "south"])

    @dg.asset(partitions_def=parts)
    def unpicklable(context: dg.AssetExecutionContext) -> Any:
        return lambda: context.partition_key  # plain pickle cannot store a lambda

    with pytest.raises(WandbIOManagerError) as info:
        dg.materialize([unpicklable], resources=resources, instance=instance, partition_key="south")
    message = str(info.value)
    assert "asset 'unpicklable'" in message and "partition 'south'" in message
    assert "PicklingError" in message or "AttributeError" in message
    assert "no version was created" in message
    assert _versions(wandb_resource, "unpicklable") == []


def test_io_failure_names_the_asset_and_leaves_no_version(resources, instance, wandb_resource, tmp_path):
    @dg.asset(metadata={"wandb": {"extra_files": [str(tmp_path / "missing.txt")]}})
    def with_missing_extra() -> int:
        return 1

    @dg.asset
    def gone() -> Path:
        return tmp_path / "does-not-exist"

    with pytest.raises(WandbIOManagerError, match=r"asset 'with_missing_extra'.*missing.txt"):
        dg.materialize([with_missing_extra], resources=resources, instance=instance)
    with pytest.raises(WandbIOManagerError, match=r"asset 'gone'.*does not exist"):
        dg.materialize([gone], resources=resources, instance=instance)
    assert _versions(wandb_resource, "with_missing_extra") == [] and _versions(wandb_resource, "gone") == []


def test_none_output_warns_and_logs_nothing(resources, instance, wandb_resource):
    @dg.asset
    def nothing():  # no "-> None": Dagster would then not call the IO manager at all
        return None

    result = dg.materialize([nothing], resources=resources, instance=instance)
    assert result.success
    assert _versions(wandb_resource, "nothing") == []
    messages = [e.user_message for e in instance.all_logs(result.run_id) if "returned None" in (e.user_message or "")]
    assert messages and "nothing was logged" in messages[0]


# ------------------------------------------------------------------------------------- files and references


def test_path_outputs_file_and_directory(mat_meta, resources, instance, wandb_resource, tmp_path):
    (tmp_path / "report.txt").write_text("hello\n")
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    (images / "cat.png").write_bytes(b"cat")
    (images / "sub" / "dog.png").write_bytes(b"dog")

    @dg.asset
    def report() -> Path:
        return tmp_path / "report.txt"

    @dg.asset
    def pictures() -> Path:
        return images

    @dg.asset
    def read_both(report: Path, pictures: Path) -> tuple:
        return report.read_text(), sorted(str(p.relative_to(pictures)) for p in pictures.rglob("*") if p.is_file())

    result = dg.materialize([report, pictures, read_both], resources=resources, instance=instance)
    assert result.output_for_node("read_both") == ("hello\n", ["cat.png", "sub/dog.png"])
    assert mat_meta(result, ["report"])["wandb/kind"] == "file"
    assert mat_meta(result, ["pictures"])["wandb/file_count"] == 2
    assert sorted(wandb_resource.artifact("pictures:v0").manifest.entries) == ["cat.png", "sub/dog.png"]
    # The hello file has the spec's digest.
    assert wandb_resource.artifact("report:v0").manifest.entries["report.txt"].digest == "sZRqySSS0jR8YjW00mERhA=="


def test_upath_output(resources, instance, wandb_resource, tmp_path):
    from upath import UPath

    (tmp_path / "u.txt").write_text("upath\n")

    @dg.asset
    def via_upath() -> Any:
        return UPath(f"file://{tmp_path / 'u.txt'}")

    @dg.asset
    def memory_upath() -> Any:
        path = UPath("memory://wandb-dagster-test/data/m.txt")
        path.write_text("in memory\n")
        return path

    result = dg.materialize([via_upath, memory_upath], resources=resources, instance=instance)
    assert result.success
    assert list(wandb_resource.artifact("via_upath:v0").manifest.entries) == ["u.txt"]
    mem = wandb_resource.artifact("memory_upath:v0")
    entry = next(iter(mem.manifest))
    assert Path(entry.download(root=str(tmp_path / "dl"))).read_text() == "in memory\n"


def test_reference_outputs_file_http_and_s3(resources, instance, wandb_resource, tmp_path, http_server, s3_server, s3_bucket):
    import s3fs

    local = tmp_path / "ref.txt"
    local.write_text("referenced\n")
    url = http_server.put("/data/table.csv", b"a,b\n1,2\n")
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    fs.pipe(f"{s3_bucket}/raw/one.txt", b"one")
    fs.pipe(f"{s3_bucket}/raw/two.txt", b"two")

    @dg.asset
    def file_ref() -> Reference:
        return Reference(local.as_uri())

    @dg.asset
    def web_refs() -> list:
        return [Reference(url), Reference(url, checksum=False, name="unchecked")]

    @dg.asset
    def bucket_ref() -> Reference:
        return Reference(f"s3://{s3_bucket}/raw/")

    @dg.asset
    def read(file_ref: Path, bucket_ref: Path) -> tuple:
        return file_ref.read_text(), sorted(p.name for p in bucket_ref.iterdir())

    result = dg.materialize([file_ref, web_refs, bucket_ref, read], resources=resources, instance=instance)
    assert result.output_for_node("read") == ("referenced\n", ["one.txt", "two.txt"])
    web = wandb_resource.artifact("web_refs:v0").manifest.entries
    assert web["table.csv"].ref == url and web["unchecked"].digest == url
    bucket = wandb_resource.artifact("bucket_ref:v0").manifest.entries
    assert sorted(bucket) == ["one.txt", "two.txt"]
    assert all(e.ref.startswith(f"s3://{s3_bucket}/raw/") for e in bucket.values())
    with pytest.raises(ValueError, match="not a URI"):
        Reference("relative/path")


def test_artifact_output_logged_as_is(mat_meta, resources, instance, wandb_resource, tmp_path):
    (tmp_path / "w.bin").write_bytes(b"weights")

    @dg.asset
    def handmade() -> Artifact:
        art = Artifact("my-own-name", type="model", metadata={"by": "hand"})
        art.add_file(str(tmp_path / "w.bin"))
        return art

    @dg.asset
    def downstream(handmade: Artifact) -> str:
        return handmade.qualified_name

    result = dg.materialize([handmade, downstream], resources=resources, instance=instance)
    assert result.output_for_node("downstream") == "tester/pipelines/my-own-name:v0"
    meta = mat_meta(result, ["handmade"])
    assert meta["wandb/kind"] == "artifact" and meta["wandb/type"] == "model"
    assert wandb_resource.artifact("my-own-name:v0").metadata == {"by": "hand"}


# ------------------------------------------------------------------------------------- options


def test_link_to_a_registry_that_does_not_exist_fails_the_step_naming_the_closest(resources, instance, wandb_resource):
    # Registries other than the core ones are created explicitly; a typo must not create one (issue 11).
    @dg.asset(metadata={"wandb": {"type": "model", "link_to": "wandb-registry-modle/bike-models"}})
    def typo() -> dict:
        return {"w": 1}

    with pytest.raises(WandbIOManagerError, match=r"linking it to 'wandb-registry-modle/bike-models' failed.*"
                       r"did you mean 'wandb-registry-model'"):
        dg.materialize([typo], resources=resources, instance=instance)
    assert sorted(r.name for r in wandb_resource.api().registries()) == ["dataset", "model"]


def test_asset_options_and_registry_links(mat_meta, resources, instance, wandb_resource, tmp_path):
    (tmp_path / "README.md").write_text("readme\n")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "p.svg").write_text("<svg/>")

    @dg.asset(
        metadata={
            "wandb": {
                "type": "model",
                "description": "a model",
                "aliases": ["candidate"],
                "tags": ["bikes"],
                "metadata": {"framework": "numpy"},
                "extra_files": [str(tmp_path / "README.md")],
                "extra_dirs": [str(tmp_path / "plots")],
                "link_to": [{"target": "wandb-registry-model/bike-models", "aliases": ["staging"]}],
            }
        }
    )
    def trained() -> dict:
        return {"w": 1}

    result = dg.materialize([trained], resources=resources, instance=instance)
    meta = mat_meta(result, ["trained"])
    assert meta["wandb/aliases"] == ["candidate", "latest"]
    assert meta["wandb/links"] == ["default/wandb-registry-model/bike-models:v0"]
    art = wandb_resource.artifact("trained:candidate")
    assert art.type == "model" and art.description == "a model" and art.tags == ["bikes"]
    assert art.metadata["framework"] == "numpy" and art.metadata["dagster"]["kind"] == "object"
    assert sorted(art.manifest.entries) == ["README.md", "output.pkl", "plots/p.svg"]
    linked = wandb_resource.artifact("wandb-registry-model/bike-models:staging")
    assert linked.id == art.id


@pytest.mark.parametrize(
    "options,hint",
    [
        ({"alias": ["x"]}, "'alias' (did you mean 'aliases'?)"),
        ({"serialiser": "json"}, "'serialiser' (did you mean 'serializer'?)"),
        ({"link-to": "wandb-registry-model/x"}, "'link-to' (did you mean 'link_to'?)"),
    ],
)
def test_misspelled_option_suggests_the_right_key(resources, instance, options, hint):
    @dg.asset(metadata={"wandb": options})
    def typo() -> int:
        return 1

    with pytest.raises(ValueError, match="unknown option") as info:
        dg.materialize([typo], resources=resources, instance=instance)
    assert hint in str(info.value) and "asset 'typo'" in str(info.value)


def test_invalid_option_value_is_explained(resources, instance):
    @dg.asset(metadata={"wandb": {"serializer": "yaml"}})
    def bad() -> int:
        return 1

    with pytest.raises(ValueError, match=r"asset 'bad': invalid metadata\['wandb'\]: serializer"):
        dg.materialize([bad], resources=resources, instance=instance)


# ------------------------------------------------------------------------------------- exact versions


def test_loads_the_recorded_version_not_latest(mat_meta, resources, instance, wandb_resource):
    state = {"value": "first"}

    @dg.asset
    def source() -> str:
        return state["value"]

    @dg.asset
    def sink(source: str) -> str:
        return source

    first = dg.materialize([source, sink], resources=resources, instance=instance)
    assert first.output_for_node("sink") == "first"

    # Someone logs a newer version of the collection outside Dagster: "latest" moves, the recorded one not.
    with wandb.init(settings=wandb_resource._settings(), job_type="outside") as run:
        art = Artifact("source", type="asset", metadata={"dagster": {"kind": "object", "serializer": "pickle", "entry": "output.pkl"}})
        with art.new_file("output.pkl", mode="wb") as f:
            pickle.dump("sneaky", f)
        run.log_artifact(art)
    assert wandb_resource.artifact("source:latest").version == "v1"

    again = dg.materialize([source, sink], resources=resources, instance=instance, selection=[sink])
    assert again.output_for_node("sink") == "first"  # the version Dagster's materialization recorded (v0)

    # A new materialization of the upstream is what a later downstream-only run reads.
    state["value"] = "second"
    dg.materialize([source], resources=resources, instance=instance)
    third = dg.materialize([source, sink], resources=resources, instance=instance, selection=[sink])
    assert third.output_for_node("sink") == "second"
    assert mat_meta(third, ["sink"])["wandb/version"] == "v1"


def test_same_run_reads_its_own_upstream_even_if_another_run_materialized_later(resources, instance, wandb_resource):
    """Two Dagster runs interleave: each downstream reads the upstream version of its own run."""
    import threading

    gate = threading.Event()
    order: list[str] = []

    class Cfg(dg.Config):
        value: str

    @dg.asset
    def up(config: Cfg) -> str:
        return config.value

    @dg.asset
    def down(up: str) -> str:
        order.append(up)
        if up == "slow":
            gate.wait(30)
        return up

    def run(value: str) -> Any:
        return dg.materialize(
            [up, down], resources=resources, instance=instance, run_config={"ops": {"up": {"config": {"value": value}}}}
        )

    slow = threading.Thread(target=lambda: results.append(run("slow")))
    results: list[Any] = []
    slow.start()
    while "slow" not in order:
        slow.join(0.05)
    fast = run("fast")  # materializes "up" after the slow run did, while the slow run's downstream waits
    gate.set()
    slow.join()
    assert fast.output_for_node("down") == "fast"
    assert results[0].output_for_node("down") == "slow"


def test_unchanged_output_makes_no_new_version_but_keeps_lineage(mat_meta, resources, instance, wandb_resource):
    @dg.asset
    def stable() -> dict:
        return {"config": {"lr": 0.1, "layers": [64, 32]}, "name": "same"}

    first = dg.materialize([stable], resources=resources, instance=instance)
    second = dg.materialize([stable], resources=resources, instance=instance)
    m1, m2 = (mat_meta(r, ["stable"]) for r in (first, second))
    assert m1["wandb/artifact_id"] == m2["wandb/artifact_id"] and m2["wandb/version"] == "v0"
    assert [v.version for v in _versions(wandb_resource, "stable")] == ["v0"]
    store = wandb_resource.api()._ws.store
    version = _versions(wandb_resource, "stable")[0]
    assert store.producers(version.pk) == [m1["wandb/run"].split("/")[-1], m2["wandb/run"].split("/")[-1]]


# ------------------------------------------------------------------------------------- input options


def test_input_options_version_alias_file_artifact_and_path(resources, instance, wandb_resource):
    state = {"n": 0}

    @dg.asset(metadata={"wandb": {"aliases": ["best"]}})
    def numbers() -> list:
        state["n"] += 1
        return list(range(state["n"]))

    dg.materialize([numbers], resources=resources, instance=instance)  # v0 = [0], alias best
    dg.materialize([numbers], resources=resources, instance=instance)  # v1 = [0, 1], best moves to v1

    def reader(name: str, option: dict, annotation: Any, convert: Any) -> Any:
        typed = {} if annotation is Any else {"dagster_type": annotation}  # as an annotation would
        @dg.asset(name=name, ins={"numbers": dg.AssetIn(metadata={"wandb": option} if option else None, **typed)})
        def _reader(numbers) -> Any:
            return convert(numbers)

        return _reader

    cases = {
        "by_version": ({"version": "v0"}, list, lambda v: v),
        "by_alias": ({"alias": "best"}, list, lambda v: v),
        "one_file": ({"file": "output.pkl"}, Path, lambda p: pickle.loads(p.read_bytes())),
        "as_artifact": ({"load_as": "artifact"}, Any, lambda a: a.version),
        "as_dir": ({"load_as": "path"}, Any, lambda p: sorted(x.name for x in p.iterdir())),
        "typed_artifact": (None, Artifact, lambda a: a.version),
        "typed_path": (None, Path, lambda p: pickle.loads(p.read_bytes())),
    }
    readers = [reader(name, *case) for name, case in cases.items()]
    result = dg.materialize([numbers, *readers], resources=resources, instance=instance, selection=readers)
    got = {name: result.output_for_node(name) for name in cases}
    assert got == {
        "by_version": [0], "by_alias": [0, 1], "one_file": [0, 1], "as_artifact": "v1", "as_dir": ["output.pkl"],
        "typed_artifact": "v1", "typed_path": [0, 1],
    }


def test_input_option_errors(resources, instance):
    @dg.asset
    def base() -> int:
        return 1

    @dg.asset(ins={"base": dg.AssetIn(metadata={"wandb": {"versoin": "v0"}})})
    def typo_in(base: int) -> int:
        return base

    @dg.asset(ins={"base": dg.AssetIn(metadata={"wandb": {"version": "v7"}})})
    def missing_version(base: int) -> int:
        return base

    dg.materialize([base], resources=resources, instance=instance)
    with pytest.raises(ValueError, match=r"'versoin' \(did you mean 'version'\?\)"):
        dg.materialize([base, typo_in], resources=resources, instance=instance, selection=[typo_in])
    with pytest.raises(WandbIOManagerError, match=r"asset 'base'.*v7"):
        dg.materialize([base, missing_version], resources=resources, instance=instance, selection=[missing_version])


def test_never_materialized_upstream_is_a_clear_error(resources, instance):
    @dg.asset
    def ghost() -> int:
        return 1

    @dg.asset
    def haunted(ghost: int) -> int:
        return ghost

    with pytest.raises(WandbIOManagerError, match="input 'ghost' of asset 'haunted' .*asset 'ghost' has no "
                       "materialization in this Dagster instance; materialize it in this instance first"):
        dg.materialize([ghost, haunted], resources=resources, instance=instance, selection=[haunted])


def test_recorded_version_from_another_workspace_is_refused(resources, instance, tmp_path):
    @dg.asset
    def made_elsewhere() -> int:
        return 1

    @dg.asset
    def reader(made_elsewhere: int) -> int:
        return made_elsewhere

    other = WandbResource(database_url=f"sqlite:///{tmp_path / 'other' / 'store.db'}", storage_root=str(tmp_path / "ob"),
                          entity="tester", project="pipelines", create=True)
    from wandb_dagster.dagster import WandbArtifactIOManager

    dg.materialize([made_elsewhere], resources={"wandb": other, "io_manager": WandbArtifactIOManager(wandb=other)}, instance=instance)
    with pytest.raises(WandbIOManagerError, match="not in this workspace"):
        dg.materialize([made_elsewhere, reader], resources=resources, instance=instance, selection=[reader])


def test_only_stored_files_written_by_the_io_manager_are_unpickled(resources, instance, wandb_resource, tmp_path, http_server):
    """Trust model: a version that claims to hold a pickle but whose entry is a reference is not loaded."""
    from wandb_dagster.dagster import load_artifact_object

    url = http_server.put("/evil.pkl", pickle.dumps("payload"))
    with wandb.init(settings=wandb_resource._settings()) as run:
        art = Artifact("crafted", type="asset", metadata={"dagster": {"kind": "object", "serializer": "pickle", "entry": "evil.pkl"}})
        art.add_reference(url)
        run.log_artifact(art)
        plain = Artifact("no-dagster-metadata", type="asset")
        (tmp_path / "x.pkl").write_bytes(pickle.dumps("x"))
        plain.add_file(str(tmp_path / "x.pkl"))
        run.log_artifact(plain)
    with pytest.raises(WandbIOManagerError, match="is a reference"):
        load_artifact_object(wandb_resource.artifact("crafted:v0"))
    with pytest.raises(WandbIOManagerError, match="holds no serialized object"):
        load_artifact_object(wandb_resource.artifact("no-dagster-metadata:v0"))


# ------------------------------------------------------------------------------------- ops (no asset key)


def test_op_job_outputs_and_inputs(resources, instance, wandb_resource):
    @dg.op
    def produce() -> dict:
        return {"op": True}

    @dg.op
    def consume(value: dict) -> bool:
        return value["op"]

    @dg.job(resource_defs=resources)
    def op_job() -> None:
        consume(produce())

    result = op_job.execute_in_process(instance=instance)
    assert result.output_for_node("consume") is True
    [version] = _versions(wandb_resource, collection_name(["produce", "result"]))
    store = wandb_resource.api()._ws.store
    consumer_runs = list(store.producers(version.pk))
    assert len(consumer_runs) == 1  # produced by the produce step's run ...
    from wandb_dagster.dagster.resources import _tracking_run_id

    consume_run = store.get_run("tester", "pipelines", _tracking_run_id(result.run_id, "consume"))
    assert [v.id for v in store.run_inputs(consume_run.pk)] == [version.id]  # ... and used by consume's


# ------------------------------------------------------------------------------------- multiprocess executor


def _multiprocess_job() -> Any:
    """Reconstructed in each step's process; the workspace comes from the environment the test sets."""
    from wandb_dagster.dagster import WandbArtifactIOManager

    wandb_res = WandbResource(entity="tester", project="pipelines")

    @dg.asset
    def mp_up(wandb: WandbResource) -> dict:
        wandb.run().log({"in_step": 1})
        return {"x": 41}

    @dg.asset
    def mp_down(mp_up: dict) -> int:
        return mp_up["x"] + 1

    job = dg.define_asset_job("mp_job", selection=[mp_up, mp_down], executor_def=dg.multiprocess_executor)
    defs = dg.Definitions(
        assets=[mp_up, mp_down], jobs=[job],
        resources={"wandb": wandb_res, "io_manager": WandbArtifactIOManager(wandb=wandb_res)},
    )
    return defs.resolve_job_def("mp_job")


def test_multiprocess_executor_one_run_per_step(database_url, tmp_path, instance, monkeypatch, mat_meta):
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", database_url)
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", str(tmp_path / "blobs"))
    job = dg.build_reconstructable_job(
        "test_dagster_io_manager", "_multiprocess_job", reconstructor_working_directory=str(Path(__file__).parent)
    )
    with dg.execute_job(job, instance=instance) as result:
        assert result.success
        up_meta = mat_meta(result, ["mp_up"])
        down_meta = mat_meta(result, ["mp_down"])
    resource = WandbResource(entity="tester", project="pipelines")
    store = resource.api()._ws.store
    up_run = store.get_run(*up_meta["wandb/run"].split("/"))
    down_run = store.get_run(*down_meta["wandb/run"].split("/"))
    assert up_run.pk != down_run.pk and up_run.group == down_run.group == result.run_id
    assert [row["in_step"] for row in store.history(up_run.pk)] == [1]  # metric and artifact: one run
    assert [v.id for v in store.run_outputs(up_run.pk)] == [up_meta["wandb/artifact_id"]]
    assert [v.id for v in store.run_inputs(down_run.pk)] == [up_meta["wandb/artifact_id"]]
    assert up_run.state == down_run.state == "finished"  # finished when each step's process tore down
    assert resource.artifact("mp_down:v0").version == "v0"
