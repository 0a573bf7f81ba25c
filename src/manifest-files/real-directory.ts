import { realpathSync } from "node:fs";
import * as path from "node:path";

/**
 * Where a directory really is: its longest existing ancestor with links resolved, plus the rest.
 * The one answer the registry policy (an `oci:` layout inside the tree) and repository ownership
 * (one folder, one owner, whatever it is called) both use.
 */
export function realDirectory(directory: string): string {
  let existing = directory;
  for (;;) {
    try {
      const real = realpathSync(existing);
      return path.join(real, path.relative(existing, directory));
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) return directory;
      existing = parent;
    }
  }
}
