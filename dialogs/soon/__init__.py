"""Services Linli announces but has not built yet. Their phrases are recognised, so
someone asking hears that the service is coming (and whom to contact meanwhile)
rather than "I don't understand". A service leaves this list when its feature lands.
"""

from __future__ import annotations

from dialogs.feature import Feature, Intent

FEATURE = Feature(
    name="soon",
    intents=(
        Intent(
            "report",
            (
                "井盖坏了",
                "井盖",
                "井盖丢了",
                "路灯坏了",
                "路灯",
                "随手拍",
                "报修",
                "隐患",
                "坑",
                "路面坑洼",
                "漏水",
                "积水",
                "垃圾",
                "举报问题",
                "反映问题",
                "树倒了",
                "电线",
                "report a problem",
                "report",
                "hazard",
                "manhole",
                "pothole",
                "broken streetlight",
                "street light",
                "something is broken",
                "leak",
                "flooding",
            ),
        ),
        Intent(
            "legal",
            (
                "法律咨询",
                "法律",
                "律师",
                "咨询律师",
                "工资拖欠",
                "拖欠工资",
                "欠薪",
                "不发工资",
                "工伤",
                "劳动合同",
                "纠纷",
                "离婚",
                "继承",
                "赡养",
                "维权",
                "春芽小站",
                "法律明白人",
                "legal advice",
                "legal",
                "lawyer",
                "unpaid wages",
                "injury at work",
                "contract",
                "dispute",
                "divorce",
                "inheritance",
            ),
        ),
        Intent("notice", ("发通知", "通知", "公告", "send a notice", "notice", "announcement")),
    ),
)
