print("eventsourcery-demo: not built yet")
