from tests.factories import AMY, load_standard, say


async def test_smoke(signpost):
    report = await load_standard(signpost)
    print(report)
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
