"""YAML anchors and aliases, including the billion-laughs expansion."""

from tests.hostile.corpus import case


def _bomb(levels: int = 9, width: int = 9) -> bytes:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join(f"*{prev}" for _ in range(width)) + "]")
    return ("\n".join(lines) + "\n").encode()


_BOMB = _bomb()

CASES = [
    case("alias bomb (billion laughs)", _BOMB, "import-yaml definition"),
    case(
        "alias bomb in a record list",
        b"- &r {record: objective, text: x}\n- *r\n- *r\n",
        "import-yaml",
    ),
    case(
        "anchor on a scalar",
        b"- record: objective\n  text: &t shared text\n- record: lesson\n  text: *t\n",
        "import-yaml",
    ),
    case("merge key", b"- &base {record: objective}\n- <<: *base\n  text: x\n", "import-yaml"),
    case("unknown alias", b"- record: objective\n  text: *nowhere\n", "import-yaml definition"),
    case("recursive alias", b"&a [*a]\n", "import-yaml definition"),
]
