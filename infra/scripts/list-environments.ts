// Prints the configured environment names on one line, for scripts/synth-check.sh.
import { ENVIRONMENTS } from '../lib/environments';

console.log(Object.keys(ENVIRONMENTS).join(' '));
