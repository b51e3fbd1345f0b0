"""`python -m sdk overflow`: per-Conv int8 accumulator analysis (K = Cin*kh*kw, worst-case and observed 16-bit
pair sums): which layers can saturate the u8s8 vpmaddubsw path of AVX2 CPUs without VNNI."""
from .args import COUNT, add_quantization, calib_paths_from_args, quant_config_from_args
from .common import print_json_last, print_table


def add_arguments(p):
    add_quantization(p)
    p.add_argument("--positions", type=COUNT, default=256, help="output positions sampled per layer and image")
    p.add_argument("--out-dir", required=True, help="folder for overflow.md / .json / .png")


def run(args):
    import tempfile

    from calibrators.data_reader import ImageCalibrationReader

    from ..report import write_outputs
    from ..quant.layers import check_float_model, load_model, metadata_of
    from ..quant.overflow import INT16_MAX, analyse, cpu_flags, int8_kernel
    from ..quant.quantize import calibrate

    config = quant_config_from_args(args)
    model = load_model(args.model)
    check_float_model(model, args.model)
    reader = ImageCalibrationReader(calib_paths_from_args(args), metadata_of(model))
    with tempfile.TemporaryDirectory(prefix="sdk-overflow-") as tmp:
        ranges = calibrate(args.model, reader, config.method, f"{tmp}/ranges.json")
    rows = analyse(args.model, ranges, reader.batches(), positions=args.positions, seed=args.seed)
    flags = cpu_flags()
    table = [[r["layer"], r["K"], r["int32_bits_worst"], r["pair_worst_case"], r["pair_observed"],
              "yes" if r["can_overflow_int16"] else "no", "YES" if r["overflowed_int16"] else "no"] for r in rows]
    headers = ["layer", "K", "int32 bits (worst)", "16-bit pair worst", "16-bit pair observed", "can saturate",
               "saturated on data"]

    def plot(ax):
        x = range(len(rows))
        ax.bar(x, [r["pair_worst_case"] for r in rows], color="tab:gray", label="worst case")
        ax.bar(x, [r["pair_observed"] for r in rows], color="tab:orange", label="observed")
        ax.axhline(INT16_MAX, color="tab:red", linestyle="--", label="int16 max")
        ax.set_xlabel("Conv layer (graph order)")
        ax.set_ylabel("|pair sum|")
        ax.legend()

    payload = {"cpu_flags": flags, "int8_kernel": int8_kernel(flags), "rows": rows,
               "layers_can_saturate": sum(r["can_overflow_int16"] for r in rows),
               "layers_saturated": sum(r["overflowed_int16"] for r in rows), "images": len(reader)}
    files = write_outputs(args.out_dir, "overflow", "u8s8 16-bit pair saturation per Conv", headers, table,
                          payload, plot)
    print_table(table, headers)
    print(f"cpu flags: {' '.join(flags) or 'unknown'}; int8 kernel: {payload['int8_kernel']}")
    print_json_last({**payload, "files": files})
    return 0
