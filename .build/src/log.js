/** A logger that drops everything: the default for library calls that are not given one. */
export const silentLogger = {
    log() {
        // Intentionally empty.
    },
};
/** Collects lines in memory; for tests and for attaching logs to reports. */
export class MemoryLogger {
    lines = [];
    log(level, message, fields = {}) {
        this.lines.push({ level, message, fields });
    }
}
//# sourceMappingURL=log.js.map