// Placeholder; replaced by the flow trace.
