/** Vitest global setup. Registry-backed suites start their own registries through the harness. */
export default function setup() {
    // Filled in by the registry harness.
}
//# sourceMappingURL=global-setup.js.map