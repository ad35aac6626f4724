"""demo/settings.py is the one place the serving side reads its environment: every variable it
declares is documented in docs/settings.md, every variable that table lists is declared there, and
no other module of demo/ reads os.environ."""
import re
from pathlib import Path

from demo import settings

ROOT = Path(__file__).resolve().parents[1]


def documented_variables() -> set[str]:
    text = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    serving = text.split("Read outside the serving side")[0]
    return set(re.findall(r"^\| `([A-Z_]+)` \|", serving, flags=re.M))


def test_every_variable_is_declared_once_and_documented():
    declared = [v.name for v in settings.ENV_VARS]
    assert len(declared) == len(set(declared))
    assert set(declared) == documented_variables()


def test_no_other_module_reads_the_environment():
    readers = [str(p.relative_to(ROOT)) for p in (ROOT / "demo").rglob("*.py")
               if p.name != "settings.py" and re.search(r"os\.environ|os\.getenv", p.read_text(encoding="utf-8"))]
    assert not readers, readers


def test_a_variable_is_read_when_asked(monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    assert settings.PORT.get() == "8123"
    monkeypatch.delenv("PORT")
    assert settings.PORT.get() == "7860"
