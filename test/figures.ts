/**
 * Prints a measured figure (for the README) when PRINT_FIGURES=1, and nothing otherwise: the
 * suite's output stays quiet, and the figures are there when someone asks for them. A switch of
 * the test run, read here in test/ like the run's other settings (global-setup.js), not the apps'
 * configuration.
 */
export function printFigures(line: string): void {
  if (process.env.PRINT_FIGURES === '1') process.stdout.write(`${line}\n`);
}
