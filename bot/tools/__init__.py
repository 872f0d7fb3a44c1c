"""Product tools on top of the bot: importing a client base, a demo history, the
simulated week and the demo tour. The shell (bot/cli.py) starts them; none of the
conversations or the scheduler depends on them."""
