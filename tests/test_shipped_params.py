"""The params.yaml the repository ships: every section parses, and the defaults are the paper's.

Read from the commit (see params_baseline), so an experiment left in the working file never
makes this pass or fail.
"""
from staged_fer.config import read_stage_params, section
from staged_fer.data.emotiw import EmotiwConfig
from staged_fer.data.fer_decode import DecodeConfig
from staged_fer.data.fer_source.config import FerConfig
from staged_fer.data.splits import SchemeConfig, SplitsParams
from staged_fer.evaluation.metrics import EvaluateConfig
from staged_fer.export import ExportConfig
from staged_fer.faces.config import AlignConfig
from staged_fer.inputs.config import InputConfig
from staged_fer.models import MODEL_NAMES, ModelsConfig
from staged_fer.training.config import RuntimeConfig, StageConfig
from tests.params_baseline import baseline_params

SECTIONS = {"fer": FerConfig, "decode": DecodeConfig, "emotiw": EmotiwConfig, "align": AlignConfig,
            "stage1": StageConfig, "stage2": StageConfig, "models": ModelsConfig, "input": InputConfig,
            "train": RuntimeConfig, "evaluate": EvaluateConfig, "export": ExportConfig}


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
    assert splits.scheme("stage1")[0] == "fer28"     # FER28 -> EmotiW: submission 3
    assert splits.scheme("stage2")[0] == "emotiw"
    assert splits.schemes == {   # Ng et al. section 4
        "fer28": SchemeConfig(("fer.Training",), ("fer.PublicTest",)),
        "fer32": SchemeConfig(("fer.Training", "fer.PublicTest"), ("fer.PrivateTest",)),
        "fer32_emotiw": SchemeConfig(("fer.Training", "fer.PublicTest", "emotiw.Train"), ("emotiw.Val",)),
        "emotiw": SchemeConfig(("emotiw.Train",), ("emotiw.Val",))}
    for stage in ("stage1", "stage2"):   # SGD, momentum 0.9, weight decay 0.0005, lr 0.001 / 10 every 10 epochs
        cfg = section(params, stage, StageConfig)
        assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.lr_step) == (0.001, 0.9, 0.0005, 10)
        assert (cfg.keep, cfg.select) == ("best", "val")   # the paper chose on the validation set
    models = section(params, "models", ModelsConfig)
    assert models.alexnet.weights == models.vgg_m.weights == "imagenet"
    assert (models.alexnet.input_size, models.vgg_m.input_size) == (227, 224)
    assert models.vgg_m.caffemodel_url.endswith("/VGG_CNN_M_2048.caffemodel")
    align = section(params, "align", AlignConfig)
    assert (align.min_fit, align.box_from, align.size) == (0.3, "eye_centres", 256)
    assert section(params, "input", InputConfig).resize == 256
    train = section(params, "train", RuntimeConfig)
    assert (train.devices, train.device) == (1, "auto")
    fer = section(params, "fer", FerConfig)
    assert fer.source == "file" and fer.labels == "fer"
    emotiw = section(params, "emotiw", EmotiwConfig)
    assert emotiw.source == "dir" and emotiw.labels is None and emotiw.splits.Val == "Val"
    evaluate = section(params, "evaluate", EvaluateConfig)
    assert evaluate.bootstrap >= 100 and evaluate.cost.similar
    assert section(params, "export", ExportConfig).onnx == ()     # the optional export stage is off
