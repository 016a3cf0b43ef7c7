"""The person's own account: /help, /cancel, /language, what Linli stores (/mydata)
and erasing it (/forget). /forget runs every feature's eraser, then the core one."""

from __future__ import annotations

from dialogs.account.commands import cancel_command, help_command
from dialogs.account.flows import FORGET, LANGUAGE
from dialogs.account.mydata import mydata_command, profile
from dialogs.feature import Command, Feature, Intent

FEATURE = Feature(
    name="account",
    flows=(LANGUAGE, FORGET),
    commands=(
        Command("help", help_command, description_key="commands.help"),
        Command("cancel", cancel_command, description_key="commands.cancel"),
        Command("mydata", mydata_command, description_key="commands.mydata"),
    ),
    intents=(
        Intent("language", ("语言", "切换语言", "换成英文", "换成中文", "english", "中文", "language")),
        Intent("mydata", ("我的数据", "我的信息", "my data", "what do you know about me")),
        Intent("help", ("帮助", "菜单", "你能做什么", "怎么用", "help", "menu", "what can you do")),
    ),
    mydata=(profile,),
)
