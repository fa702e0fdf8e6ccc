// Placeholder; replaced by the order API.
