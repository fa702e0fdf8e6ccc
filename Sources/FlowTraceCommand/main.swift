print("flow-trace: not built yet")
