"""The live night: a session that stages timestamped chunks, and the loop that feeds it from LSL."""
