"""The engine's side of remote runs: the remote process and its records.

`python -m tuneboard.remote --spec SPEC` (`__main__`) executes one run on the machine a remote
executor started it on, writing what the run records as lines on stdout (`records`); the
launching process replays them into its database. The spec and the executor base are public:
`tuneboard.RemoteSpec`, `tuneboard.remote_command`, `tuneboard.RemoteExecutor`
(`tuneboard.sdk.remote`).
"""
