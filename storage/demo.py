"""Demo data shipped with Linli: Wuhan communities from the article, a few people, and
sample rest stations (storage/stations_sample.csv, each marked as sample data).

Loading is idempotent: running it twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import communities, notices, stations_io, users
from storage.data import Role
from storage.models import Community

# (name, district, street, WGS-84 lat, lon, buildings). Coordinates are approximate.
COMMUNITIES: tuple[tuple[str, str, str, float, float, list[str]], ...] = (
    ("春和社区", "东湖高新区", "关东街道", 30.4806, 114.4103, [f"{i}栋" for i in range(1, 13)]),
    ("保利心语西区社区", "洪山区", "和平街道", 30.5762, 114.3621, [f"{i}栋" for i in range(1, 9)]),
    ("申新社区", "硚口区", "宝丰街道", 30.5867, 114.2496, [f"{i}栋" for i in range(1, 7)]),
    (
        "青和居社区",
        "青山区",
        "厂前街道",
        30.6296,
        114.3932,
        [f"东区{i}栋" for i in range(1, 9)] + [f"西区{i}栋" for i in range(1, 9)],
    ),
    ("解放社区", "硚口区", "汉水桥街道", 30.5720, 114.2560, [f"{i}栋" for i in range(1, 6)]),
    ("绿景苑社区", "青山区", "钢花村街道", 30.6370, 114.3870, [f"{i}栋" for i in range(1, 11)]),
    ("江汉北路社区", "江岸区", "大智街道", 30.5930, 114.2830, ["江汉北路18号"]),
    ("南湖社区", "武昌区", "南湖街道", 30.5010, 114.3280, [f"{i}栋" for i in range(1, 9)]),
)

# English names where one is in use, and each community office's phone (demo numbers:
# 027 is Wuhan's area code; these lines are made up).
COMMUNITY_CONTACTS: dict[str, tuple[str, str]] = {
    "春和社区": ("Chunhe Community", "027-88000001"),
    "保利心语西区社区": ("Poly Xinyu West Community", "027-88000002"),
    "申新社区": ("Shenxin Community", "027-88000003"),
    "青和居社区": ("Qinghe Residence Community", "027-88000004"),
    "解放社区": ("Jiefang Community", "027-88000005"),
    "绿景苑社区": ("Lüjingyuan Community", "027-88000006"),
    "江汉北路社区": ("North Jianghan Road Community", "027-88000007"),
    "南湖社区": ("Nanhu Community", "027-88000008"),
}


@dataclass(frozen=True)
class DemoPerson:
    external_id: str  # the terminal identity: `linli chat --as staff`
    name: str
    roles: tuple[Role, ...]
    community: str
    building: str
    phone: str
    language: str = "zh"


PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson("resident", "王奶奶", (), "春和社区", "3栋", "+8613800000001"),
    DemoPerson("family", "王小明", (), "春和社区", "5栋", "+8613800000002"),
    DemoPerson("rider", "郭小哥", (Role.GIG_WORKER,), "申新社区", "2栋", "+8613800000003"),
    DemoPerson("driver", "陈师傅", (Role.DRIVER,), "绿景苑社区", "1栋", "+8613800000004"),
    DemoPerson("driver2", "李师傅", (Role.DRIVER,), "青和居社区", "东区2栋", "+8613800000005"),
    DemoPerson("lawyer", "刘律师", (Role.LAWYER,), "春和社区", "8栋", "+8613800000006"),
    DemoPerson("staff", "周网格员", (Role.STAFF,), "春和社区", "1栋", "+8613800000007"),
    DemoPerson("visitor", "Emma", (), "春和社区", "2栋", "+8613800000008", language="en"),
)


async def is_empty(session: AsyncSession) -> bool:
    count = (await session.execute(select(func.count()).select_from(Community))).scalar_one()
    return int(count) == 0


async def load(session: AsyncSession) -> None:
    by_name = {}
    for name, district, street, lat, lon, buildings in COMMUNITIES:
        name_en, phone = COMMUNITY_CONTACTS.get(name, ("", ""))
        by_name[name] = await communities.add_community(
            session,
            name=name,
            district=district,
            street=street,
            latitude=lat,
            longitude=lon,
            buildings=buildings,
            name_en=name_en,
            phone=phone,
        )
    for person in PEOPLE:
        user = await users.ensure_user(
            session,
            channel="terminal",
            external_id=person.external_id,
            chat_id=person.external_id,
            client_language=person.language,
        )
        if user.onboarded:
            continue
        community = by_name[person.community]
        building = next(
            b for b in await communities.list_buildings(session, community.id) if b.name == person.building
        )
        await users.record_consent(session, user.id, display_name=person.name, username=None)
        await users.set_language(session, user.id, person.language)
        await users.set_home(session, user.id, community_id=community.id, building_id=building.id)
        await users.set_phone(session, user.id, person.phone)
        for role in person.roles:
            await users.grant_role(session, user.id, role)
        if Role.STAFF in person.roles:  # the demo staff member looks after their community
            await notices.grant_scope(session, user.id, community.id)
        await users.mark_onboarded(session, user.id)
    await stations_io.load_sample(session)
