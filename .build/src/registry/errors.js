import { PromoterError } from "../errors.js";
export class RegistryError extends PromoterError {
    details;
    constructor(code, summary, details, options) {
        super(code, formatRegistryMessage(summary, details), options);
        this.details = details;
    }
}
function formatRegistryMessage(summary, details) {
    const where = details.repository ? `${details.registry}/${details.repository}` : details.registry;
    const side = details.side ? `${details.side} ` : "";
    const parts = [`${details.operation} ${side}${where}: ${summary}`];
    if (details.status !== undefined)
        parts.push(`HTTP ${details.status}`);
    if (details.registryCodes && details.registryCodes.length > 0)
        parts.push(details.registryCodes.join(", "));
    if (details.registryMessage)
        parts.push(details.registryMessage);
    if (details.request)
        parts.push(`(${details.request})`);
    return parts.join("; ");
}
//# sourceMappingURL=errors.js.map