"""Mandarin tone sandhi on jieba tokens, with parity to the official ``text/tone_sandhi.py``.

Two stages, both working on ``[word, pos]`` tokens of the jieba POS tagger:

* :meth:`ToneSandhi.merge_tokens` joins tokens before the pinyin is looked up: ``不`` with the
  token after it, ``一`` with the token after it (or ``V 一 V`` into one word), repeated tokens,
  neighbouring words that are all third tone (or meet on a third tone) when short enough, and
  ``儿`` with the token before it;
* :meth:`ToneSandhi.apply` rewrites the tone digits of one word's finals (``TONE3`` style with
  ``5`` for the neutral tone): ``不`` and ``一`` sandhi, neutral tones (particles, suffixes,
  reduplication, a fixed word list) and third-tone sandhi.

The word lists are data (facts of Mandarin usage as the official frontend encodes them).
The rules, including their quirks, are those of the official code; the structure is our own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastsovits.errors import UnsupportedCharacters

Token = list[str]  # [word, pos]

# Words whose last syllable is read in the neutral tone.
ALWAYS_NEUTRAL: frozenset[str] = frozenset(
    (
        "一辈 丈人 丈夫 上司 上头 下巴 下水 不在 不由 世故 东家 东西 两口 丧气 丫头 主意 买卖 事情 云彩 交情 亲家 亲戚 人家 什么 介绍 休息 伙计 似的 位置 体面 作坊 佩服 "
        "使唤 便宜 倒腾 兄弟 先生 关系 养活 冒失 冤家 冤枉 冷战 凉快 凑合 凤凰 出息 分析 利害 利索 利落 别扭 刺激 刺猬 前头 力气 功夫 动弹 动静 勤快 匀称 包涵 包袱 千斤 "
        "厉害 厚道 口袋 叫唤 吆喝 合同 吉他 名堂 名字 后头 吓唬 含糊 告示 告诉 和尚 咕噜 咖喱 咳嗽 哆嗦 哈欠 哑巴 唾沫 商量 喇叭 喇嘛 喉咙 喜欢 喽啰 嘀咕 嘟囔 嘱咐 嘴巴 "
        "困难 在乎 地方 地道 壮实 外甥 多么 多少 大人 大夫 大意 大方 大爷 太阳 头发 女婿 奴才 妖精 妥当 妯娌 姐夫 姑娘 委屈 姥爷 娘家 婆家 媒人 媳妇 嫁妆 字号 学生 学问 "
        "官司 实在 客气 家伙 寒碜 寡妇 对付 对头 将就 小伙 小气 少爷 尾巴 屁股 岁数 工夫 差事 巴掌 巴结 师傅 师父 希罕 帐篷 帮手 干事 幸福 庄稼 应酬 开通 弄堂 弟兄 张罗 "
        "得罪 心思 志气 忙活 快活 念叨 念头 怎么 思量 怪物 悟性 情形 惦记 意思 意识 懒得 戒指 扁担 扎实 扑腾 打发 打听 打扮 打点 打算 打量 扫帚 扫把 折腾 护士 报复 抬举 "
        "拖沓 招呼 招牌 拨弄 拳头 拾掇 指头 指甲 挑剔 挖苦 提防 收成 收拾 故事 新鲜 时候 明白 暖和 月亮 月饼 朋友 木匠 木头 本事 机灵 枇杷 枕头 架势 柴火 栅栏 核桃 棉花 "
        "棒槌 棺材 槟榔 模糊 欺负 正经 母亲 比方 泥鳅 活泼 浪头 消息 清楚 温和 溜达 滑溜 漂亮 火候 灯笼 炊帚 点心 烂糊 烟筒 烧饼 热闹 照顾 熟悉 爱人 父亲 爽快 牌楼 牙碜 "
        "牢骚 牲口 特务 状元 狐狸 玄乎 玫瑰 玻璃 琉璃 琢磨 琵琶 甘蔗 甜头 生意 畜生 疏忽 疙瘩 疟疾 痛快 痢疾 白净 盘算 盘缠 相声 眉毛 眨巴 眯缝 眼睛 知识 石匠 石头 石榴 "
        "码头 砚台 祖宗 福气 秀才 秀气 秧歌 称呼 稀罕 稳当 窗户 窝囊 窟窿 笑话 笑语 笤帚 答应 算盘 算计 篱笆 簸箕 粮食 精神 糊涂 糟蹋 糨糊 累赘 红火 结实 编辑 罐头 罗嗦 "
        "翻腾 老太 老头 老婆 老实 老爷 耳朵 耷拉 耽搁 耽误 聪明 胡同 胡琴 胡萝 胭脂 胳膊 能耐 脊梁 脑袋 脾气 膏药 自在 舌头 舒坦 舒服 芝麻 苍蝇 苗头 苗条 荒唐 荸荠 菩萨 "
        "萝卜 葡萄 葫芦 薄荷 蘑菇 蚂蚱 蛤蟆 蜡烛 行当 行李 街坊 衙门 衣服 衣裳 补丁 裁缝 见识 规矩 计划 认识 记号 记性 讲究 豆腐 财主 费用 趔趄 跟头 跳蚤 踏实 转悠 软和 "
        "过去 运气 这个 这么 连累 迷糊 造化 逻辑 道士 邋遢 那个 那么 部分 里头 里脊 钥匙 铁匠 铃铛 铺盖 锄头 门道 闺女 阔气 队伍 难为 风筝 馄饨 馒头 首饰 马虎 骆驼 骨头 "
        "高粱 鸳鸯 麻利 麻烦"
    ).split()
)

# Words exempt from the reduplication and ``们/子`` neutral-tone rules.
NEVER_NEUTRAL: frozenset[str] = frozenset(
    (
        "人人 以下 佼佼 冉冉 分子 卵子 原子 吵吵 哈哈 女子 娃哈哈 学子 家家户户 局地 干嘛 幺幺 恳恳 想想 打打 攘攘 数数 整整 死死 熙熙 瓜子 电子 男子 留得 石子 算子 考考 "
        "耕地 花花草草 莘莘 莲子 落地 虎虎 袅袅 量子 青青"
    ).split()
)

_PARTICLES = "吧呢哈啊呐噻嘛吖嗨呐哦哒额滴哩哟喽啰耶喔诶"  # sentence-final particles -> neutral
_STRUCTURAL = "的地得"
_ASPECT = "了着过"
_ASPECT_POS = frozenset({"ul", "uz", "ug"})
_SUFFIX_PLURAL = "们子"
_SUFFIX_PLURAL_POS = frozenset({"r", "n"})
_LOCATIVE = "上下里"
_LOCATIVE_POS = frozenset({"s", "l", "f"})
_DIRECTIONAL = "来去"
_DIRECTIONAL_BEFORE = "上下进出回过起开"
_MEASURE_GE_AFTER = "几有两半多各整每做是"
_REDUP_POS_HEADS = frozenset("nva")
# After "一", these marks keep its first tone (the official list, full-width and ASCII).
_YI_STOP = frozenset("：，；。？！“”‘’':,;.?!")


def _retone(final: str, tone: str) -> str:
    """Replace the tone digit (last character) of a TONE3 final."""
    return final[:-1] + tone


def _all_third(finals: Iterable[str]) -> bool:
    return all(f[-1] == "3" for f in finals)


def _is_reduplication(word: str) -> bool:
    return len(word) == 2 and word[0] == word[1]


class ToneSandhi:
    """Token merging and tone rewriting; stateless apart from the two injected lookups.

    ``search_cut(word)`` is jieba's ``cut_for_search`` and ``finals_of(word)`` the pypinyin
    ``FINALS_TONE3`` finals (neutral tone ``5``) of a word, one per character.
    """

    def __init__(self, search_cut: Callable[[str], Iterable[str]], finals_of: Callable[[str], list[str]]) -> None:
        self._search_cut = search_cut
        self._finals_of = finals_of

    # --- token merging -------------------------------------------------------------------

    def merge_tokens(self, tokens: Iterable[Iterable[str]]) -> list[Token]:
        """Join tokens as the official ``pre_merge_for_modify`` does."""
        seg = _merge_bu(tokens)
        seg = _merge_yi(seg)
        seg = _merge_repeats(seg)
        seg = self._merge_third_tones(seg, whole_words=True)
        seg = self._merge_third_tones(seg, whole_words=False)
        return _merge_er(seg)

    def _merge_third_tones(self, seg: list[Token], *, whole_words: bool) -> list[Token]:
        """Join a token to the previous one when both are all third tone (``whole_words``) or
        when they meet on two third tones, unless the previous one is a reduplication, was
        itself just joined, or the two together exceed three characters."""
        finals = [self._finals_of(word) for word, _ in seg]
        for (word, _), fins in zip(seg, finals):
            if not fins or not all(fins):
                # The official step fails on an unreadable character and the run fails later.
                bad = "".join(ch for ch, f in zip(word, fins) if not f) or word
                raise UnsupportedCharacters(f"no Mandarin reading for {bad!r} (in {word!r})")
        out: list[Token] = []
        joined = [False] * len(seg)
        for i, (word, pos) in enumerate(seg):
            if i and not joined[i - 1]:
                prev_word = seg[i - 1][0]
                if whole_words:
                    meets = _all_third(finals[i - 1]) and _all_third(finals[i])
                else:
                    meets = finals[i - 1][-1][-1] == "3" and finals[i][0][-1] == "3"
                if meets and not _is_reduplication(prev_word) and len(prev_word) + len(word) <= 3:
                    out[-1][0] += word
                    joined[i] = True
                    continue
            out.append([word, pos])
        return out

    # --- tone rewriting ------------------------------------------------------------------

    def apply(self, word: str, pos: str, finals: list[str]) -> list[str]:
        """Tone sandhi of one (merged) word; returns the new finals (the input is not kept)."""
        finals = list(finals)
        _bu_tones(word, finals)
        _yi_tones(word, finals)
        finals = self._neutral_tones(word, pos, finals)
        return self._third_tones(word, finals)

    def _halves(self, word: str) -> tuple[str, str]:
        """Split a word in two around its shortest search-mode sub-word (first of equals)."""
        shortest = sorted(self._search_cut(word), key=len)[0]
        if word.find(shortest) == 0:
            return shortest, word[len(shortest) :]
        return word[: -len(shortest)], shortest

    def _neutral_tones(self, word: str, pos: str, finals: list[str]) -> list[str]:
        if pos[:1] in _REDUP_POS_HEADS and word not in NEVER_NEUTRAL:
            for j in range(1, len(word)):
                if word[j] == word[j - 1]:
                    finals[j] = _retone(finals[j], "5")
        n = len(word)
        last = word[-1]
        ge = word.find("个")
        if last in _PARTICLES or last in _STRUCTURAL:
            finals[-1] = _retone(finals[-1], "5")
        elif n == 1 and word in _ASPECT and pos in _ASPECT_POS:
            finals[-1] = _retone(finals[-1], "5")
        elif n > 1 and last in _SUFFIX_PLURAL and pos in _SUFFIX_PLURAL_POS and word not in NEVER_NEUTRAL:
            finals[-1] = _retone(finals[-1], "5")
        elif n > 1 and last in _LOCATIVE and pos in _LOCATIVE_POS:
            finals[-1] = _retone(finals[-1], "5")
        elif n > 1 and last in _DIRECTIONAL and word[-2] in _DIRECTIONAL_BEFORE:
            finals[-1] = _retone(finals[-1], "5")
        elif (ge >= 1 and (word[ge - 1].isnumeric() or word[ge - 1] in _MEASURE_GE_AFTER)) or word == "个":
            finals[ge] = _retone(finals[ge], "5")
        elif word in ALWAYS_NEUTRAL or word[-2:] in ALWAYS_NEUTRAL:
            finals[-1] = _retone(finals[-1], "5")
        head, tail = self._halves(word)
        parts = [finals[: len(head)], finals[len(head) :]]
        for part_word, part in zip((head, tail), parts):
            if part_word in ALWAYS_NEUTRAL or part_word[-2:] in ALWAYS_NEUTRAL:
                part[-1] = _retone(part[-1], "5")
        return parts[0] + parts[1]

    def _third_tones(self, word: str, finals: list[str]) -> list[str]:
        n = len(word)
        if n == 2 and _all_third(finals):
            finals[0] = _retone(finals[0], "2")
        elif n == 3:
            head, _ = self._halves(word)
            if _all_third(finals):
                if len(head) == 2:  # 2+1, e.g. 蒙古/包
                    finals[0] = _retone(finals[0], "2")
                    finals[1] = _retone(finals[1], "2")
                elif len(head) == 1:  # 1+2, e.g. 纸/老虎
                    finals[1] = _retone(finals[1], "2")
            else:
                first, second = finals[: len(head)], finals[len(head) :]
                if len(first) == 2 and _all_third(first):
                    first[0] = _retone(first[0], "2")
                if len(second) == 2 and _all_third(second):
                    second[0] = _retone(second[0], "2")
                elif second and not _all_third(second) and second[0][-1] == "3" and first[-1][-1] == "3":
                    first[-1] = _retone(first[-1], "2")
                finals = first + second
        elif n == 4:  # idioms: two halves of two
            first, second = finals[:2], finals[2:]
            for half in (first, second):
                if _all_third(half):
                    half[0] = _retone(half[0], "2")
            finals = first + second
        return finals


# --- 不 / 一 sandhi (in place) --------------------------------------------------------------


def _bu_tones(word: str, finals: list[str]) -> None:
    """``X不Y`` -> neutral 不; otherwise 不 before a fourth tone becomes second tone."""
    if len(word) == 3 and word[1] == "不":
        finals[1] = _retone(finals[1], "5")
        return
    for i in range(len(word) - 1):
        if word[i] == "不" and finals[i + 1][-1] == "4":
            finals[i] = _retone(finals[i], "2")


def _yi_tones(word: str, finals: list[str]) -> None:
    """一 keeps its tone among numerals, is neutral in ``V一V``, first tone in ``第一``, and
    otherwise second tone before a fourth tone and fourth tone before other syllables."""
    if "一" in word and all(ch.isnumeric() for ch in word if ch != "一"):
        return
    if len(word) == 3 and word[1] == "一" and word[0] == word[-1]:
        finals[1] = _retone(finals[1], "5")
    elif word.startswith("第一"):
        finals[1] = _retone(finals[1], "1")
    else:
        for i in range(len(word) - 1):
            if word[i] != "一":
                continue
            if finals[i + 1][-1] == "4":
                finals[i] = _retone(finals[i], "2")
            elif word[i + 1] not in _YI_STOP:
                finals[i] = _retone(finals[i], "4")


# --- merging helpers (pure functions of the token list) ------------------------------------


def _merge_bu(tokens: Iterable[Iterable[str]]) -> list[Token]:
    """Attach a lone ``不`` to the token after it (a final ``不`` stays, tagged ``d``)."""
    out: list[Token] = []
    prev = ""
    for word, pos in tokens:
        if prev == "不":
            word = prev + word
        if word != "不":
            out.append([word, pos])
        prev = word
    if prev == "不":
        out.append(["不", "d"])
    return out


def _merge_yi(seg: list[Token]) -> list[Token]:
    """``V 一 V`` (both verbs, same word) becomes one word; then a lone ``一`` takes the next token."""
    joined: list[Token] = []
    i = 0
    while i < len(seg):
        word, pos = seg[i]
        if i and word == "一" and i + 1 < len(seg):
            left, right = joined[-1], seg[i + 1]
            if left[0] == right[0] and left[1] == "v" and right[1] == "v":
                joined[-1] = [left[0] + "一" + right[0], left[1]]
                i += 2
                continue
        joined.append([word, pos])
        i += 1
    out: list[Token] = []
    for word, pos in joined:
        if out and out[-1][0] == "一":
            out[-1][0] += word
        else:
            out.append([word, pos])
    return out


def _merge_repeats(seg: list[Token]) -> list[Token]:
    """A token equal to the (possibly already grown) previous one is appended to it."""
    out: list[Token] = []
    for word, pos in seg:
        if out and word == out[-1][0]:
            out[-1][0] += word
        else:
            out.append([word, pos])
    return out


def _merge_er(seg: list[Token]) -> list[Token]:
    """A ``儿`` token joins the token before it (unless that one is ``#``)."""
    out: list[Token] = []
    for i, (word, pos) in enumerate(seg):
        if i and word == "儿" and seg[i - 1][0] != "#":
            out[-1][0] += word
        else:
            out.append([word, pos])
    return out
