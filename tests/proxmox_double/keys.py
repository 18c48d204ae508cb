"""What a sequence of Proxmox VE `sendkey` keys (QEMU key names) types on a US keyboard."""

from __future__ import annotations

_PLAIN = {
    "ret": "\n",
    "kp_enter": "\n",
    "spc": " ",
    "tab": "\t",
    "minus": "-",
    "equal": "=",
    "dot": ".",
    "comma": ",",
    "slash": "/",
    "backslash": "\\",
    "semicolon": ";",
    "apostrophe": "'",
    "grave_accent": "`",
    "bracket_left": "[",
    "bracket_right": "]",
    "asterisk": "*",
}
_SHIFTED = {
    "minus": "_",
    "equal": "+",
    "dot": ">",
    "comma": "<",
    "slash": "?",
    "backslash": "|",
    "semicolon": ":",
    "apostrophe": '"',
    "grave_accent": "~",
    "bracket_left": "{",
    "bracket_right": "}",
    **dict(zip("1234567890", "!@#$%^&*()", strict=True)),
}


def typed_text(keys: list[str]) -> str:
    """The text the keys type; a key that types no character (esc, f1, ctrl-...) is an error."""
    text = []
    for key in keys:
        shifted = key.startswith("shift-")
        name = key.removeprefix("shift-")
        if len(name) == 1 and (name.isalpha() or name.isdigit()):
            if shifted and name.isalpha():
                text.append(name.upper())
            elif shifted:
                text.append(_SHIFTED[name])
            else:
                text.append(name)
        elif shifted and name in _SHIFTED:
            text.append(_SHIFTED[name])
        elif not shifted and name in _PLAIN:
            text.append(_PLAIN[name])
        else:
            raise ValueError(f"sendkey '{key}' types no character")
    return "".join(text)
