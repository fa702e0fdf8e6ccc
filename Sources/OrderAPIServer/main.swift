print("order-api: not built yet")
