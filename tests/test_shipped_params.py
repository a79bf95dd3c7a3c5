"""The params.yaml the repository ships: every section parses, and the defaults are the paper's.

Read from the commit (see params_baseline), so an experiment left in the working file never
makes this pass or fail.
"""
from staged_fer.params import read_stage_params, section
from staged_fer.data.target import TargetConfig
from staged_fer.data.fer_decode import DecodeConfig
from staged_fer.data.fer_source.fer_params import FerConfig
from staged_fer.data.splits import SchemeConfig, SplitsParams
from staged_fer.evaluation.metrics import EvaluateConfig
from staged_fer.export import ExportConfig
from staged_fer.faces.align_params import AlignConfig
from staged_fer.inputs.input_params import InputConfig
from staged_fer.models import MODEL_NAMES, ModelsConfig
from staged_fer.training.phase_params import RuntimeConfig, PhaseConfig
from tests.params_baseline import baseline_params

SECTIONS = {"fer": FerConfig, "decode": DecodeConfig, "target": TargetConfig, "align": AlignConfig,
            "phase1": PhaseConfig, "phase2": PhaseConfig, "models": ModelsConfig, "input": InputConfig,
            "runtime": RuntimeConfig, "evaluate": EvaluateConfig, "export": ExportConfig}


def test_every_section_parses_and_nothing_else_is_there():
    params = baseline_params()
    assert set(params) == {"seed", "model", "schemes", *SECTIONS}
    read_stage_params(params, SplitsParams)
    for name, cls in SECTIONS.items():
        section(params, name, cls)


def test_defaults_are_the_papers_configuration():
    params = baseline_params()
    assert params["model"] == "alexnet" and params["model"] in MODEL_NAMES
    splits = read_stage_params(params, SplitsParams)
    assert splits.scheme("phase1")[0] == "fer28"     # FER28 -> EmotiW: submission 3
    assert splits.scheme("phase2")[0] == "target"
    assert splits.schemes == {   # Ng et al. section 4
        "fer28": SchemeConfig(("fer.Training",), ("fer.PublicTest",)),
        "fer32": SchemeConfig(("fer.Training", "fer.PublicTest"), ("fer.PrivateTest",)),
        "fer32_target": SchemeConfig(("fer.Training", "fer.PublicTest", "target.Train"), ("target.Val",)),
        "target": SchemeConfig(("target.Train",), ("target.Val",))}
    for stage in ("phase1", "phase2"):   # SGD, momentum 0.9, weight decay 0.0005, lr 0.001 / 10 every 10 epochs
        cfg = section(params, stage, PhaseConfig)
        assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.lr_step) == (0.001, 0.9, 0.0005, 10)
        assert (cfg.keep, cfg.select) == ("best", "val")   # the paper chose on the validation set
    models = section(params, "models", ModelsConfig)
    assert models.alexnet.weights == models.vgg_m.weights == "imagenet"
    assert (models.alexnet.input_size, models.vgg_m.input_size) == (227, 224)
    assert models.vgg_m.caffemodel_url.endswith("/VGG_CNN_M_2048.caffemodel")
    align = section(params, "align", AlignConfig)
    assert (align.min_fit, align.box_from, align.size) == (0.3, "eye_centres", 256)
    assert section(params, "input", InputConfig).resize == 256
    runtime = section(params, "runtime", RuntimeConfig)
    assert (runtime.devices, runtime.device) == (1, "auto")
    fer = section(params, "fer", FerConfig)
    assert fer.source == "file" and fer.labels == "fer"
    target = section(params, "target", TargetConfig)
    assert target.source == "dir" and target.labels is None and target.splits.Val == "Val"
    evaluate = section(params, "evaluate", EvaluateConfig)
    assert evaluate.bootstrap >= 100 and evaluate.cost.similar
    assert section(params, "export", ExportConfig).onnx == ()     # the optional export stage is off
