"""Build small randomly initialised SAM 3 checkpoints, for tests, benchmarks and demos without the hub.

The checkpoint has the hub's layout (a ``sam3_video`` config with detector and tracker, plus processor
and tokenizer files), so it loads through the same ``from_pretrained`` path as ``facebook/sam3``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def tiny_clip_tokenizer() -> Any:
    """A byte-level CLIP tokenizer with no merges: every character is a token. No files needed."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[])


def sam3_video_config(
    image_size: int = 112,
    patch_size: int = 14,
    hidden: int = 32,
    vit_layers: int = 2,
    vit_hidden: int = 32,
    num_queries: int = 8,
    full_size: bool = False,
) -> Any:
    """A ``Sam3VideoConfig``; ``full_size=True`` gives the released architecture (840 M parameters)."""
    from transformers import Sam3VideoConfig

    if full_size:
        return Sam3VideoConfig()
    grid = image_size // patch_size
    vit = dict(
        model_type="sam3_vit_model",
        hidden_size=vit_hidden,
        intermediate_size=2 * vit_hidden,
        num_hidden_layers=vit_layers,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch_size,
        window_size=max(1, grid // 2),
        global_attn_indexes=[vit_layers - 1],
        pretrain_image_size=image_size,
    )
    sizes = [[grid * 4, grid * 4], [grid * 2, grid * 2], [grid, grid]]
    vision = dict(
        model_type="sam3_vision_model",
        backbone_config=vit,
        fpn_hidden_size=hidden,
        backbone_feature_sizes=sizes,
    )
    small = dict(hidden_size=hidden, num_attention_heads=2, intermediate_size=2 * hidden)
    text = dict(
        model_type="clip_text_model",
        vocab_size=600,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        projection_dim=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=32,
        bos_token_id=512,
        eos_token_id=513,
        pad_token_id=513,
    )
    detector = dict(
        model_type="sam3",
        vision_config=vision,
        text_config=text,
        geometry_encoder_config=dict(num_layers=1, **small),
        detr_encoder_config=dict(num_layers=1, **small),
        detr_decoder_config=dict(num_layers=1, num_queries=num_queries, **small),
        mask_decoder_config=dict(hidden_size=hidden, num_attention_heads=2),
    )
    tracker = dict(
        model_type="sam3_tracker_video",
        vision_config=vision,
        image_size=image_size,
        prompt_encoder_config=dict(hidden_size=hidden, image_size=image_size, patch_size=patch_size),
        mask_decoder_config=dict(
            hidden_size=hidden, mlp_dim=2 * hidden, num_attention_heads=2, iou_head_hidden_dim=hidden
        ),
        memory_attention_hidden_size=hidden,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=2 * hidden,
        memory_attention_rope_feat_sizes=[grid, grid],
        memory_encoder_hidden_size=hidden,
        memory_encoder_output_channels=64,  # the video tracker reads 64-channel memories
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=2 * hidden,
    )
    return Sam3VideoConfig(detector_config=detector, tracker_config=tracker, low_res_mask_size=grid * 4)


def build_checkpoint(folder: str | Path, seed: int = 0, **config_kwargs: Any) -> Path:
    """Save a randomly initialised SAM 3 (weights, config, processor, tokenizer) into ``folder``.

    transformers saves ``Sam3VideoModel``'s tracker weights under a doubled ``tracker_model.`` prefix that
    only ``Sam3VideoModel`` reads back; the keys are rewritten to the hub checkpoint's layout, which
    ``Sam3Model``, ``Sam3TrackerModel`` and the video models all load.
    """
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import Sam3ImageProcessor, Sam3Processor, Sam3VideoModel
    from transformers.utils import logging as hf_logging

    folder = Path(folder)
    config = sam3_video_config(**config_kwargs)
    torch.manual_seed(seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = Sam3VideoModel(config)
        model.save_pretrained(folder)
    finally:
        hf_logging.set_verbosity(verbosity)
    weights = folder / "model.safetensors"
    state = load_file(weights)
    state = {k.replace("tracker_model.tracker_model.", "tracker_model."): v for k, v in state.items()}
    save_file(state, weights, metadata={"format": "pt"})
    size = config.detector_config.vision_config.backbone_config.image_size
    processor = Sam3Processor(Sam3ImageProcessor(size={"height": size, "width": size}), tiny_clip_tokenizer())
    processor.save_pretrained(folder)
    return folder


def random_sam3(device: str = "cpu", dtype: Any = "auto", seed: int = 0, **config_kwargs: Any) -> Any:
    """A randomly initialised SAM 3 built in memory (no files), as a ``LoadedSam3`` for ``Sam3Segmenter``.

    For benchmarks: ``random_sam3(full_size=True)`` has the released architecture, so timings and memory
    are those of the real model (the masks are meaningless).
    """
    import torch
    from transformers import (
        Sam3ImageProcessor,
        Sam3Model,
        Sam3Processor,
        Sam3TrackerModel,
        Sam3TrackerProcessor,
    )

    from .model import LoadedSam3, resolve_device, resolve_dtype, share_backbone

    config = sam3_video_config(**config_kwargs)
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    torch.manual_seed(seed)
    detector = Sam3Model(config.detector_config)
    tracker = Sam3TrackerModel(config.tracker_config)
    tracker.vision_encoder.backbone.load_state_dict(detector.vision_encoder.backbone.state_dict())
    shared = share_backbone(detector, tracker)
    size = config.detector_config.vision_config.backbone_config.image_size
    image_processor = Sam3ImageProcessor(size={"height": size, "width": size})
    processor = Sam3Processor(image_processor, tiny_clip_tokenizer())
    tracker_processor = Sam3TrackerProcessor(image_processor)
    for model in (detector, tracker):
        model.to(device=device, dtype=torch_dtype).eval()
    return LoadedSam3(
        detector, tracker, processor, tracker_processor, "random-init", None, device, torch_dtype, shared
    )
