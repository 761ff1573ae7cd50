from tests.factories import AMY, load_standard, say
from tests.stepup_helpers import enrol_and_step_up


async def test_smoke(signpost):
    report = await load_standard(signpost)
    print(report)
    await enrol_and_step_up(signpost, "P002")
    r = await say(signpost, "P002", AMY)
    print(r)
    r = await say(signpost, "P002", "Amy Jones 03/04/2014")
    print(r)
    r = await say(signpost, "P002", "Lily Brown 20/01/2019")
    print(r)
    r = await say(signpost, "nobody", "help")
    print(r)
    r = await say(signpost, "P002", "9990000050")
    print(r)
