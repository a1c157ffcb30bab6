"""Tiny random-weight models of real VLM architectures, built offline in a temp folder.

`build(family, folder)` writes config, safetensors weights, a byte-level BPE tokenizer trained here on
a few sentences (with the family's special tokens), an image processor and a chat template, so
`AutoProcessor` + `AutoModelForImageTextToText` (and vLLM) load it like a hub checkpoint. Qwen2-VL /
Qwen2.5-VL processors need torchvision in transformers 5 (for a video processor): without it, load
their processor with `medprobe.backends.hf.load_processor`.
Sizes follow ../shared/LOCAL_MODELS.md: hidden 64, 2 layers, head_dim 32 (vLLM's CPU attention
rejects 16), LLaVA vision keys renamed to the hub layout vLLM expects.
"""

from __future__ import annotations

import json
from pathlib import Path

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava", "gemma3", "idefics3")
#: families vLLM 0.32 (CPU) can load here: its LLaVA and Gemma3 modules import torchvision at module level
VLLM_FAMILIES = ("idefics3",)
_CORPUS = [
    "Is there a pleural effusion in this chest x-ray? yes no",
    "What organ is shown in this CT image? liver lung brain kidney heart",
    "Answer with the option's letter from the given choices directly. A B C D E",
    "The answer is yes. The answer is no. Answer with yes or no.",
    "the left lung shows an opacity; the right kidney is normal.",
]
_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
             num_key_value_heads=2, head_dim=32, max_position_embeddings=1024, rms_norm_eps=1e-6)  # fmt: skip

# chat templates: images expand to the family's placeholder; the reply follows the generation prompt
_LLAVA_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<image>\n{% else %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% if m['role'] == 'assistant' %}</s>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
_QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ p['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<start_of_image>{% else %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
_IDEFICS3_TEMPLATE = (
    "<|begin_of_text|>{% for m in messages %}{{ m['role'] | capitalize }}:"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<image>{% else %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
_SPECIAL = {
    "llava": ["<s>", "</s>", "<unk>", "<pad>", "<image>"],
    "gemma3": ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
               "<end_of_image>", "<image_soft_token>", "\n", "\n\n", "\n\n\n", "\n\n\n\n"],
    "idefics3": ["<|begin_of_text|>", "<end_of_utterance>", "<|finetune_right_pad_id|>", "<fake_token_around_image>",
                 "<image>", "<global-img>"] + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)],
    "qwen2_vl": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"],
}  # fmt: skip
_SPECIAL["qwen2_5_vl"] = _SPECIAL["qwen2_vl"]


def _tokenizer(family: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = _SPECIAL[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_CORPUS, trainer)
    if family == "llava":
        kw = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
    elif family == "gemma3":
        kw = dict(bos_token="<bos>", eos_token="<end_of_turn>", unk_token="<unk>", pad_token="<pad>")
    elif family == "idefics3":
        kw = dict(bos_token="<|begin_of_text|>", eos_token="<end_of_utterance>", pad_token="<|finetune_right_pad_id|>")
    else:
        kw = dict(eos_token="<|im_end|>", pad_token="<|endoftext|>")
    extra = {}
    if family == "gemma3":  # Gemma3Processor reads these names from the tokenizer
        extra = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, extra_special_tokens=extra, **kw)
    fast.add_special_tokens({"additional_special_tokens": [t for t in special if t not in kw.values()]})
    return fast


def _llava(tok, folder: Path):
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)  # fmt: skip

    text = LlamaConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id, **_TEXT)  # fmt: skip
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=28, patch_size=14, projection_dim=32)  # fmt: skip
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-1, vision_feature_select_strategy="default")  # fmt: skip
    model = LlavaForConditionalGeneration(config)
    images = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = LlavaProcessor(image_processor=images, tokenizer=tok, patch_size=14, num_additional_image_tokens=1,
                               vision_feature_select_strategy="default", chat_template=_LLAVA_TEMPLATE)  # fmt: skip
    return model, processor


def _qwen2_vl(tok, folder: Path, family: str = "qwen2_vl"):
    import transformers
    from transformers import Qwen2VLImageProcessorPil

    ids = {t: tok.convert_tokens_to_ids(t) for t in _SPECIAL["qwen2_vl"]}
    # mrope_section sums to head_dim / 2 = 16
    text = dict(vocab_size=len(tok), rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                     "mrope_section": [4, 6, 6]}, **_TEXT,
                bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)  # fmt: skip
    text.pop("head_dim")  # hidden / heads = 32
    vision = dict(depth=2, hidden_size=32, num_heads=2, patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2, in_channels=3)  # fmt: skip
    if family == "qwen2_vl":
        vision.update(embed_dim=32, hidden_size=64, mlp_ratio=2)  # hidden_size: the merger's output (text width)
    else:
        vision.update(intermediate_size=64, out_hidden_size=64, window_size=56, fullatt_block_indexes=[1])
    prefix = "Qwen2VL" if family == "qwen2_vl" else "Qwen2_5_VL"
    config = getattr(transformers, prefix + "Config")(
        text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        bos_token_id=None, tie_word_embeddings=False,
    )  # fmt: skip
    model = getattr(transformers, prefix + "ForConditionalGeneration")(config)
    # 56x56 pixels -> 4x4 patches -> 4 image tokens after the 2x2 merge. The processor needs a video
    # processor (torchvision) in transformers 5: save its parts as on the hub; medprobe.backends.hf.load_processor
    # loads them without torchvision
    images = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 56)
    images.save_pretrained(folder)
    video = {"video_processor_type": "Qwen2VLVideoProcessor", "min_pixels": 56 * 56,  # both families use it
             "max_pixels": 56 * 56, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}  # fmt: skip
    (folder / "video_preprocessor_config.json").write_text(json.dumps(video, indent=2))  # as on the hub
    tok.chat_template = _QWEN_TEMPLATE
    tok.save_pretrained(folder)
    return model, None


def _gemma3(tok, folder: Path):
    from transformers import (Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessor, Gemma3Processor,
                              SiglipVisionConfig)  # fmt: skip

    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<start_of_image>", "<end_of_image>", "<image_soft_token>")}
    text = dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id, sliding_window=64, query_pre_attn_scalar=32, **_TEXT)  # fmt: skip
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                image_size=28, patch_size=14)  # fmt: skip
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                          boi_token_index=ids["<start_of_image>"], eoi_token_index=ids["<end_of_image>"],
                          image_token_index=ids["<image_soft_token>"], eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)  # fmt: skip
    model = Gemma3ForConditionalGeneration(config)
    images = Gemma3ImageProcessor(size={"height": 28, "width": 28})
    processor = Gemma3Processor(image_processor=images, tokenizer=tok, image_seq_length=4, chat_template=_GEMMA_TEMPLATE)
    return model, processor


def _idefics3(tok, folder: Path):
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil,
                              Idefics3Processor, Idefics3VisionConfig, LlamaConfig)  # fmt: skip

    text = LlamaConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id, **_TEXT)  # fmt: skip
    vision = Idefics3VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                  image_size=56, patch_size=14)  # fmt: skip
    config = Idefics3Config(vision_config=vision, text_config=text, scale_factor=2, pad_token_id=tok.pad_token_id,
                            image_token_id=tok.convert_tokens_to_ids("<image>"))  # fmt: skip
    model = Idefics3ForConditionalGeneration(config)
    # no splitting, 56x56 -> 4x4 patches -> 4 image tokens after the 2x2 pixel shuffle (the PIL processor: no torchvision)
    images = Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": 56},
                                       max_image_size={"longest_edge": 56})  # fmt: skip
    processor = Idefics3Processor(image_processor=images, tokenizer=tok, image_seq_len=4, chat_template=_IDEFICS3_TEMPLATE)
    return model, processor


def build(family: str, folder: Path | str, seed: int = 0) -> Path:
    """Write a tiny random model of `family` into `folder`; returns the folder."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = _tokenizer(family)
    builders = {"llava": _llava, "gemma3": _gemma3, "idefics3": _idefics3, "qwen2_vl": _qwen2_vl,
                "qwen2_5_vl": lambda tok, folder: _qwen2_vl(tok, folder, "qwen2_5_vl")}  # fmt: skip
    model, processor = builders[family](tok, folder)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder)
    if processor is not None:
        processor.save_pretrained(folder)
    if family in ("llava", "gemma3"):
        _rename_vision_keys(folder)
    return folder


def _rename_vision_keys(folder: Path) -> None:
    """transformers 5 saves `vision_tower.*`; hub checkpoints and vLLM use `vision_tower.vision_model.*`
    (transformers loads both layouts to the same weights)."""
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    tensors = load_file(path)
    renamed = {}
    for key, value in tensors.items():
        for prefix in ("model.vision_tower.", "vision_tower."):
            if key.startswith(prefix) and not key.startswith(prefix + "vision_model."):
                key = prefix + "vision_model." + key[len(prefix) :]
                break
        renamed[key] = value
    save_file(renamed, path, metadata={"format": "pt"})
    index = folder / "model.safetensors.index.json"
    if index.exists():
        index.unlink()


if __name__ == "__main__":
    import sys
    import time

    for fam in sys.argv[2:] or FAMILIES:
        t = time.perf_counter()
        build(fam, Path(sys.argv[1]) / fam)
        print(fam, f"{time.perf_counter() - t:.2f}s", json.dumps(sorted(p.name for p in (Path(sys.argv[1]) / fam).iterdir())))
