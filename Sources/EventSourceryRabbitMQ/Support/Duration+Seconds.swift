extension Duration {
    /// The duration in seconds as a floating-point number (Foundation's `TimeInterval`);
    /// shared by the package's modules.
    package var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
