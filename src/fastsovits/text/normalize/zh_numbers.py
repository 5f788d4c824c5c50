"""Reading numbers, dates, times, units and formulas in Chinese.

Behaviour matches the official normaliser (``GPT_SoVITS/text/zh_normalization``, itself from
PaddleSpeech), which decides every reading below: cardinals with 十/百/千/万/亿 and a dropped
leading 一 before 十; digit-by-digit reading (with 幺 for 1) for years, phone numbers and long
numbers; times with 点/分/秒 and 半; the rules run in a fixed order over each sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_DIGIT_NAMES = "零一二三四五六七八九"
# (power of ten, unit) from the largest, for splitting a cardinal into groups.
_GROUP_UNITS = ((8, "亿"), (4, "万"), (3, "千"), (2, "百"), (1, "十"))


def read_digits(digits: str, yao: bool = False) -> str:
    """Digit by digit: "2024" -> "二零二四"; with ``yao`` the digit 1 reads 幺 (phone numbers)."""
    out = "".join(_DIGIT_NAMES[int(d)] for d in digits)
    return out.replace("一", "幺") if yao else out


def _cardinal_parts(digits: str, zero_before: bool = True) -> list[str]:
    significant = digits.lstrip("0")
    if not significant:
        return []
    if len(significant) == 1:
        if zero_before and len(significant) < len(digits):
            return ["零", _DIGIT_NAMES[int(significant)]]
        return [_DIGIT_NAMES[int(significant)]]
    power, unit = next((p, u) for p, u in _GROUP_UNITS if p < len(significant))
    head, tail = digits[:-power], digits[-power:]
    return _cardinal_parts(head) + [unit] + _cardinal_parts(tail)


def read_cardinal(digits: str) -> str:
    """An integer as a Chinese cardinal: "105" -> "一百零五", "12" -> "十二", "0" -> "零"."""
    if not digits:
        return ""
    digits = digits.lstrip("0")
    if not digits:
        return "零"
    parts = _cardinal_parts(digits)
    if len(parts) >= 2 and parts[0] == "一" and parts[1] == "十":
        parts = parts[1:]
    return "".join(parts)


def read_number(number: str) -> str:
    """An unsigned decimal string: "3.50" -> "三点五零", ".5" -> "零点五", "12" -> "十二"."""
    pieces = number.split(".")
    if len(pieces) > 2:
        raise ValueError(f"number {number!r} has more than one decimal point")
    whole, frac = (pieces[0], "") if len(pieces) == 1 else (pieces[0], pieces[1])
    out = read_cardinal(whole)
    # Trailing zeros of the fraction collapse to a single one ("1.500" -> "一点五零").
    frac = frac.rstrip("0") + "0" if frac.endswith("0") else frac.rstrip("0")
    if frac:
        out = (out or "零") + "点" + read_digits(frac)
    return out


def _sign(minus: str | None, word: str = "负") -> str:
    return word if minus else ""


# ----------------------------------------------------------------------------- dates and times
_DATE = re.compile(r"(\d{4}|\d{2})年((0?[1-9]|1[0-2])月)?(((0?[1-9])|((1|2)[0-9])|30|31)([日号]))?")
_DATE_NUMERIC = re.compile(r"(\d{4})([- /.])(0[1-9]|1[012])\2(0[1-9]|[12][0-9]|3[01])")
_CLOCK = r"([0-1]?[0-9]|2[0-3]):([0-5][0-9])(:([0-5][0-9]))?"
_TIME = re.compile(_CLOCK)
_TIME_SPAN = re.compile(_CLOCK + r"(~|-)" + _CLOCK)


def _date(m: re.Match[str]) -> str:
    year, month, day, day_word = m.group(1), m.group(3), m.group(5), m.group(9)
    out = f"{read_digits(year)}年" if year else ""
    if month:
        out += f"{read_cardinal(month)}月"
    if day:
        out += f"{read_cardinal(day)}{day_word}"
    return out


def _date_numeric(m: re.Match[str]) -> str:
    return f"{read_digits(m.group(1))}年{read_cardinal(m.group(3))}月{read_cardinal(m.group(4))}日"


def _clock_part(value: str) -> str:
    out = read_number(value.lstrip("0"))
    return "零" + out if value.startswith("0") else out


def _clock(hour: str, minute: str, second: str | None, half_from: str) -> str:
    out = f"{read_number(hour)}点"
    if minute.lstrip("0"):
        # The official span reading tests the *first* minute for "half past" in both halves.
        out += "半" if int(half_from) == 30 else f"{_clock_part(minute)}分"
    if second and second.lstrip("0"):
        out += f"{_clock_part(second)}秒"
    return out


def _time(m: re.Match[str]) -> str:
    return _clock(m.group(1), m.group(2), m.group(4), m.group(2))


def _time_span(m: re.Match[str]) -> str:
    first = _clock(m.group(1), m.group(2), m.group(4), m.group(2))
    return first + "至" + _clock(m.group(6), m.group(7), m.group(9), m.group(2))


# ----------------------------------------------------------------------------- units
_UNIT_ALTERNATIVES = r"(%|°C|℃|度|摄氏度|cm2|cm²|cm3|cm³|cm|db|ds|kg|km|m2|m²|m³|m3|ml|m|mm|s)"
_SIGNED_OR_BARE = r"((-?)((\d+)(\.\d+)?)|(\.(\d+)))"
_UNIT_SPAN = re.compile(_SIGNED_OR_BARE + _UNIT_ALTERNATIVES + "[~]" + _SIGNED_OR_BARE + _UNIT_ALTERNATIVES)
_TEMPERATURE = re.compile(r"(-?)(\d+(\.\d+)?)(°C|℃|度|摄氏度)")
# Replaced in this order, as plain substrings (so "mm" becomes 米米: "m" goes first).
_MEASURES = (
    ("cm2", "平方厘米"),
    ("cm²", "平方厘米"),
    ("cm3", "立方厘米"),
    ("cm³", "立方厘米"),
    ("cm", "厘米"),
    ("db", "分贝"),
    ("ds", "毫秒"),
    ("kg", "千克"),
    ("km", "千米"),
    ("m2", "平方米"),
    ("m²", "平方米"),
    ("m³", "立方米"),
    ("m3", "立方米"),
    ("ml", "毫升"),
    ("m", "米"),
    ("mm", "毫米"),
    ("s", "秒"),
)


def _temperature(m: re.Match[str]) -> str:
    # Every unit reads 度: the official rule means to keep 摄氏度 but tests the wrong group.
    return f"{_sign(m.group(1), '零下')}{read_number(m.group(2))}度"


def _measures(text: str) -> str:
    for short, word in _MEASURES:
        if short in text:
            text = text.replace(short, word)
    return text


# ----------------------------------------------------------------------------- formulas
_SUPERSCRIPTS = {
    "⁰": "0",
    "¹": "1",
    "²": "2",
    "³": "3",
    "⁴": "4",
    "⁵": "5",
    "⁶": "6",
    "⁷": "7",
    "⁸": "8",
    "⁹": "9",
    "ˣ": "x",
    "ʸ": "y",
    "ⁿ": "n",
}
_SUP = "[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*"
_OPERAND = rf"((-?)((\d+)(\.\d+)?{_SUP})|(\.\d+{_SUP})|([A-Za-z]{_SUP}))"
_FORMULA = re.compile(_OPERAND + r"([\+\-\×÷=])" + _OPERAND)
_OPERATORS = {"+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等于"}
_POWER = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]+")


def _formula(m: re.Match[str]) -> str:
    return m.group(1) + _OPERATORS[m.group(8)] + m.group(9)


def _power(m: re.Match[str]) -> str:
    return "的" + "".join(_SUPERSCRIPTS[c] for c in m.group(0)) + "次方"


# ----------------------------------------------------------------------------- plain numbers
_FRACTION = re.compile(r"(-?)(\d+)/(\d+)")
_PERCENT = re.compile(r"(-?)(\d+(\.\d+)?)%")
_MOBILE = re.compile(r"(?<!\d)((\+?86 ?)?1([38]\d|5[0-35-9]|7[678]|9[89])\d{8})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)((0(10|2[1-3]|[3-9]\d{2})-?)?[1-9]\d{6,7})(?!\d)")
_SERVICE_NUMBER = re.compile(r"(400)(-)?\d{3}(-)?\d{4}")
_NUMBER_RANGE = re.compile(r"(?<![\d\+\-\×÷=])((-?)((\d+)(\.\d+)?))[-~]((-?)((\d+)(\.\d+)?))(?![\d\+\-\×÷=])")
_NEGATIVE = re.compile(r"(-)(\d+)")
_VERSION = re.compile(r"((\d+)(\.\d+)(\.\d+)?(\.\d+)+)")
_DECIMAL = re.compile(r"(-?)((\d+)(\.\d+))|(\.(\d+))")
_NUMBER = re.compile(r"(-?)((\d+)(\.\d+)?)|(\.(\d+))")
_LONG_NUMBER = re.compile(r"\d{3}\d*")

# Measure words after which a number reads as a count (2 -> 两). Only membership matters.
_MEASURE_WORDS = (
    "处 台 架 枚 趟 幅 平 方 堵 间 床 株 批 项 例 列 篇 栋 注 亩 封 艘 把 目 套 段 人 所 朵 匹 张 座 回 场 尾 条 个 首 阙 阵 网 炮 "
    "顶 丘 棵 只 支 袭 辆 挑 担 颗 壳 窠 曲 墙 群 腔 砣 客 贯 扎 捆 刀 令 打 手 罗 坡 山 岭 江 溪 钟 队 单 双 对 出 口 头 脚 板 跳 "
    "枝 件 贴 针 线 管 名 位 身 堂 课 本 页 家 户 层 丝 毫 厘 分 钱 两 斤 铢 石 钧 锱 忽 千克 毫克 微克 公分 寸 尺 丈 里 寻 常 铺 "
    "程 千米 分米 厘米 毫米 微米 米 撮 勺 合 升 斗 盘 碗 碟 叠 桶 笼 盆 盒 杯 斛 锅 簋 篮 罐 瓶 壶 卮 盏 箩 箱 煲 啖 袋 钵 年 月 "
    "日 季 刻 时 周 天 秒 小时 旬 纪 岁 世 更 夜 春 夏 秋 冬 代 伏 辈 丸 泡 粒 幢 堆 根 道 面 片 块 元 亿 千万 百万 万 千 百 "
    "亿元 千万元 百万元 万元 千元 百元 美元 亿吨 千万吨 百万吨 万吨 千吨 百吨 十吨 吨 亿块 千万块 百万块 万块 千块 百块 角 毛"
).split()
_COUNTED = re.compile(r"(\d+)([多余几\+])?(" + "|".join(sorted(set(_MEASURE_WORDS), key=len, reverse=True)) + ")")


def _fraction(m: re.Match[str]) -> str:
    return f"{_sign(m.group(1))}{read_number(m.group(3))}分之{read_number(m.group(2))}"


def _percent(m: re.Match[str]) -> str:
    return f"{_sign(m.group(1))}百分之{read_number(m.group(2))}"


def _phone_number(text: str, separators: Callable[[str], list[str]]) -> str:
    return "，".join(read_digits(part, yao=True) for part in separators(text))


def _mobile(m: re.Match[str]) -> str:
    return _phone_number(m.group(0), lambda t: t.strip("+").split())


def _landline(m: re.Match[str]) -> str:
    return _phone_number(m.group(0), lambda t: t.split("-"))


def _signed(m: re.Match[str]) -> str:
    if m.group(5):  # ".5" without a whole part
        return read_number(m.group(5))
    return f"{_sign(m.group(1))}{read_number(m.group(2))}"


def _number_range(m: re.Match[str]) -> str:
    return f"{_NUMBER.sub(_signed, m.group(1))}到{_NUMBER.sub(_signed, m.group(6))}"


def _negative(m: re.Match[str]) -> str:
    return f"{_sign(m.group(1))}{read_number(m.group(2))}"


def _version(m: re.Match[str]) -> str:
    return "".join("点" if c == "." else read_number(c) for c in m.group(1))


def _counted(m: re.Match[str]) -> str:
    number = read_number(m.group(1))
    approx = "多" if m.group(2) == "+" else (m.group(2) or "")
    return f"{'两' if number == '二' else number}{approx}{m.group(3)}"


def verbalize(sentence: str) -> str:
    """Read every number-like expression of one sentence, in the official order of rules."""
    s = _DATE.sub(_date, sentence)
    s = _DATE_NUMERIC.sub(_date_numeric, s)
    s = _TIME_SPAN.sub(_time_span, s)
    s = _TIME.sub(_time, s)
    s = _UNIT_SPAN.sub(lambda m: m.group(0).replace("~", "至"), s)
    s = _TEMPERATURE.sub(_temperature, s)
    s = _measures(s)
    while _FORMULA.search(s):
        s = _FORMULA.sub(_formula, s)
    s = _POWER.sub(_power, s)
    s = _FRACTION.sub(_fraction, s)
    s = _PERCENT.sub(_percent, s)
    s = _MOBILE.sub(_mobile, s)
    s = _LANDLINE.sub(_landline, s)
    s = _SERVICE_NUMBER.sub(_landline, s)
    s = _NUMBER_RANGE.sub(_number_range, s)
    s = _NEGATIVE.sub(_negative, s)
    s = _VERSION.sub(_version, s)
    s = _DECIMAL.sub(_signed, s)
    s = _COUNTED.sub(_counted, s)
    s = _LONG_NUMBER.sub(lambda m: read_digits(m.group(0), yao=True), s)
    return _NUMBER.sub(_signed, s)
