"""UI text in English and Chinese; the official WebUI's labels for languages and cut methods."""

from __future__ import annotations

from collections.abc import Callable

# key -> (English, Chinese)
TEXT: dict[str, tuple[str, str]] = {
    "title": ("fastsovits WebUI: voice cloning on a batching engine", "fastsovits WebUI：批处理引擎上的语音克隆"),
    "tab_synth": ("Synthesize", "语音合成"),
    "tab_batch": ("Batch", "批量合成"),
    "tab_voices": ("Voices", "音色库"),
    "tab_finetune": ("Fine-tune", "微调训练"),
    "tab_models": ("Models", "模型管理"),
    "gpt_model": ("GPT model", "GPT 模型"),
    "sovits_model": ("SoVITS model", "SoVITS 模型"),
    "refresh": ("Refresh", "刷新"),
    "load_model": ("Load model", "加载模型"),
    "model_status": ("Model status", "模型状态"),
    "voice": ("Saved voice (optional)", "已保存的音色（可选）"),
    "no_voice": ("(none: use the reference below)", "（无：使用下方参考音频）"),
    "ref_audio": ("Reference audio (3-10 s): upload or record", "参考音频（3~10 秒）：上传或录音"),
    "ref_text": ("Reference text", "参考音频的文本"),
    "ref_lang": ("Reference language", "参考音频的语种"),
    "ref_free": ("Reference-free mode (no reference text)", "无参考文本模式"),
    "aux_refs": ("Auxiliary references (timbre averaged in)", "辅参考音频（融合音色）"),
    "text": ("Text to synthesize", "需要合成的文本"),
    "text_lang": ("Text language", "需要合成的语种"),
    "split": ("How to split the text", "怎么切"),
    "preview_split": ("Preview sentences", "预览切分结果"),
    "sentences": ("Sentences", "切分后的句子"),
    "sampling": ("Sampling", "采样参数"),
    "top_k": ("top_k", "top_k"),
    "top_p": ("top_p", "top_p"),
    "temperature": ("temperature", "temperature"),
    "rep_penalty": ("repetition penalty", "重复惩罚"),
    "speed": ("speed", "语速"),
    "pause": ("pause between sentences (s)", "句间停顿秒数"),
    "seed": ("seed", "随机种子"),
    "random_seed": ("random seed", "随机种子（每次随机）"),
    "sample_steps": ("sample steps (v3/v4 only)", "采样步数（仅 v3/v4）"),
    "streaming": ("Stream (start playing before the whole text is done)", "流式输出（边合成边播放）"),
    "synthesize": ("Synthesize", "合成语音"),
    "cancel": ("Cancel", "取消"),
    "output": ("Output", "输出语音"),
    "stream_output": ("Streaming output", "流式输出"),
    "download": ("Download", "下载"),
    "details": ("Per-sentence details", "逐句详情"),
    "engine_stats": ("Engine", "引擎"),
    "status": ("Status", "状态"),
    "batch_input": (
        "Lines to synthesize: .txt (one per line), .csv or .jsonl",
        "待合成文本：.txt（每行一句）、.csv 或 .jsonl",
    ),
    "batch_format": ("Audio format", "音频格式"),
    "batch_run": ("Run batch", "开始批量合成"),
    "batch_zip": ("Audio files + manifest (zip)", "音频文件与清单（zip）"),
    "batch_lines": ("Lines", "逐行结果"),
    "voice_name": ("Voice name", "音色名称"),
    "save_voice": ("Save voice", "保存音色"),
    "delete_voice": ("Delete voice", "删除音色"),
    "voice_list": ("Saved voices", "已保存的音色"),
    "preview": ("Preview", "试听"),
    "ft_exp": ("Experiment name", "实验名称"),
    "ft_step1": ("1. Recordings", "1. 录音"),
    "ft_upload": ("Upload recordings", "上传录音"),
    "ft_folder": (
        "...or a folder path on this machine (inside the allowed folders)",
        "……或本机文件夹路径（须在允许的目录内）",
    ),
    "ft_slice": ("Slice", "切分"),
    "ft_skip_slice": ("Clips are already short: copy them as they are", "已是短句：不切分，直接使用"),
    "ft_threshold": ("threshold (dB)", "音量阈值 (dB)"),
    "ft_min_length": ("min length (ms)", "每段最小长度 (ms)"),
    "ft_min_interval": ("min interval (ms)", "最短切割间隔 (ms)"),
    "ft_hop": ("hop size (ms)", "hop_size (ms)"),
    "ft_max_sil": ("max silence kept (ms)", "切完后静音最多留多长 (ms)"),
    "ft_step2": ("2. Transcripts", "2. 标注"),
    "ft_transcribe": ("Transcribe (faster-whisper)", "语音识别（faster-whisper）"),
    "ft_list": ("...or upload a .list (wav_path|speaker|language|text)", "……或上传 .list 标注文件"),
    "ft_use_list": ("Use this .list", "使用该标注文件"),
    "ft_table": ("Transcripts: edit the text, untick 'keep' to drop a clip", "标注：可修改文本，取消 keep 以丢弃"),
    "ft_save_table": ("Save transcripts", "保存标注"),
    "ft_play": ("Play clip", "播放片段"),
    "ft_clip_index": ("Clip number", "片段序号"),
    "ft_step3": ("3. Prepare", "3. 数据格式化"),
    "ft_base_gpt": ("Base GPT", "底模 GPT"),
    "ft_base_sovits": ("Base SoVITS", "底模 SoVITS"),
    "ft_prepare": ("Prepare", "格式化数据"),
    "ft_step4": ("4. Train", "4. 训练"),
    "ft_gpt_epochs": ("GPT epochs", "GPT 训练轮数"),
    "ft_gpt_batch": ("GPT batch size", "GPT batch size"),
    "ft_gpt_lr": ("GPT learning rate", "GPT 学习率"),
    "ft_sovits_epochs": ("SoVITS epochs", "SoVITS 训练轮数"),
    "ft_sovits_batch": ("SoVITS batch size", "SoVITS batch size"),
    "ft_sovits_lr": ("SoVITS learning rate", "SoVITS 学习率"),
    "ft_text_low_lr": ("text low-lr rate", "文本模块学习率权重"),
    "ft_advanced": ("Advanced: training config overrides (YAML, field: value)", "高级：训练配置覆盖（YAML）"),
    "ft_train_gpt": ("Train GPT", "训练 GPT"),
    "ft_train_sovits": ("Train SoVITS", "训练 SoVITS"),
    "ft_step5": ("5. Export", "5. 导出"),
    "ft_export": ("Export", "导出模型"),
    "ft_use": ("Use this model", "使用该模型"),
    "ft_progress": ("Progress", "进度"),
    "ft_log": ("Log", "日志"),
    "ft_refresh": ("Refresh progress", "刷新进度"),
    "models_installed": ("Installed models", "已安装的模型"),
    "models_info": ("Info", "详情"),
    "models_download": ("Download official weights", "下载官方权重"),
    "models_version": ("Version", "版本"),
    "models_convert": ("Convert to the fast format", "转换为快速格式"),
    "models_convert_name": ("Converted folder name", "转换后的文件夹名"),
    "ok": ("Done.", "完成。"),
    "err_no_text": ("Type some text to synthesize.", "请输入要合成的文本。"),
    "err_no_ref": (
        "Give a reference audio (upload, record or pick a saved voice).",
        "请提供参考音频（上传、录音或选择已保存的音色）。",
    ),
    "err_no_model": ("Pick a GPT and a SoVITS model first.", "请先选择 GPT 和 SoVITS 模型。"),
}

# Official WebUI language labels (spec 8.2) -> language modes.
LANGUAGES: tuple[tuple[str, str, str], ...] = (  # (English, Chinese, mode)
    ("Chinese", "中文", "all_zh"),
    ("English", "英文", "en"),
    ("Japanese", "日文", "all_ja"),
    ("Cantonese", "粤语", "all_yue"),
    ("Korean", "韩文", "all_ko"),
    ("Chinese-English mix", "中英混合", "zh"),
    ("Japanese-English mix", "日英混合", "ja"),
    ("Cantonese-English mix", "粤英混合", "yue"),
    ("Korean-English mix", "韩英混合", "ko"),
    ("Multilingual mix (auto)", "多语种混合", "auto"),
    ("Multilingual mix (Cantonese)", "多语种混合(粤语)", "auto_yue"),
)
V1_MODES = ("all_zh", "en", "all_ja", "zh", "ja", "auto")

# Official cut-method labels.
SPLITS: tuple[tuple[str, str, str], ...] = (
    ("No split", "不切", "cut0"),
    ("Every 4 sentences", "凑四句一切", "cut1"),
    ("Every ~50 characters", "凑50字一切", "cut2"),
    ("At Chinese full stops 。", "按中文句号。切", "cut3"),
    ("At English full stops .", "按英文句号.切", "cut4"),
    ("At every punctuation mark", "按标点符号切", "cut5"),
)


def translator(language: str) -> Callable[[str], str]:
    idx = 1 if language == "zh" else 0

    def t(key: str) -> str:
        return TEXT[key][idx]

    return t


def language_choices(language: str, version: str = "v2") -> list[tuple[str, str]]:
    idx = 1 if language == "zh" else 0
    return [(row[idx], row[2]) for row in LANGUAGES if version != "v1" or row[2] in V1_MODES]


def split_choices(language: str) -> list[tuple[str, str]]:
    idx = 1 if language == "zh" else 0
    return [(row[idx], row[2]) for row in SPLITS]
