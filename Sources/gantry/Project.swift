import ArgumentParser
import Distributed
import FileFormats
import Foundation
import GAN
import Kernels

/// `gantry bench --project`'s flags, an option group of `gantry bench`.
struct ProjectionOptions: ParsableArguments {
    @Flag(help: """
        Project data-parallel training to 1-1,024 ranks: measure each model's compute per step \
        (every rank at once, no communication), the all-reduce over message sizes on this job's \
        network (fit as latency and bandwidth under Open MPI 4.1's algorithms) and the reduction's \
        arithmetic; predict step time, images/s and efficiency on that network and on assumed \
        links, with and without overlap and Float16 gradients; check the prediction at this job's \
        ranks against its own measured step; write a plot and a CSV. Both models unless --model.
        """)
    var project = false

    @Option(help: "With --project: the plot (PNG, drawn by gnuplot); its table is written beside it as .csv, its gnuplot script as .gp.")
    var plot = "projection.png"

    @Option(help: "With --project: the rates of the assumed links, in Gbit/s, comma-separated.")
    var links = "1,10,100"

    @Option(name: .customLong("latency"), help: """
        With --project: the assumed links' latency α in microseconds (default: this job's, \
        measured, where its ranks talk over TCP; else \(fixed(ProjectionReport.defaultLatency * 1e6, 0)), \
        kernel TCP over Ethernet).
        """)
    var latencyMicroseconds: Double?

    /// `--links` as numbers.
    var linkRates: [Double] { links.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) } }

    func validate() throws {
        let given = plot != "projection.png" || links != "1,10,100" || latencyMicroseconds != nil
        if !project, given { throw ValidationError("--plot, --links and --latency go with --project") }
        let parts = links.split(separator: ",", omittingEmptySubsequences: false)
        if parts.isEmpty || linkRates.count != parts.count || linkRates.contains(where: { !($0 > 0 && $0.isFinite) }) {
            throw ValidationError("--links must be positive rates in Gbit/s separated by commas, such as 1,10,100; got \(links)")
        }
        if let latencyMicroseconds, !(latencyMicroseconds >= 0 && latencyMicroseconds.isFinite) {
            throw ValidationError("--latency must be 0 or more microseconds, got \(latencyMicroseconds)")
        }
        if plot.isEmpty || plot.hasSuffix("/") { throw ValidationError("--plot must name a file, got '\(plot)'") }
        // Before the measurements, not after them: the folder must be there.
        let folder = (plot as NSString).deletingLastPathComponent
        var isFolder: ObjCBool = false
        if project, !folder.isEmpty, !(FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue) {
            throw ValidationError("--plot's folder \(folder) does not exist; create it first")
        }
    }
}

extension Bench {
    /// Measures on every rank, then prints the report and writes the files on rank 0.
    func runProjection(_ instructionSet: InstructionSet) throws {
        let communicator = try startMPI()
        do {
            let models = modelOption.map { [$0] } ?? ModelKind.benchmarked
            let measurement = try ScalingBenchmark.run(ScalingOptions(models: models.map { benchmarkOptions($0, instructionSet) }),
                                                       communicator: communicator)
            if communicator.isRoot {
                let report = try ProjectionReport(measurement, options: projection, exchange: exchange.options,
                                                  instructionSet: instructionSet, threads: threads,
                                                  environment: ProcessInfo.processInfo.environment)
                print(report.lines.joined(separator: "\n"))
                print(try report.writeFiles(plot: projection.plot).joined(separator: "\n"))
                print(report.keyValues.joined(separator: "\n"))
            }
            try communicator.finalize()
        } catch {
            communicator.abort(message: "gantry: \(error)", exitCode: exitStatus(for: error))
        }
    }
}

/// A `ScalingMeasurement` and the projection made from it: lines for people, a CSV and a
/// gnuplot plot, then one line of key=value pairs per model for scripts.
struct ProjectionReport {
    /// α of the assumed links where this job measured none over TCP: kernel TCP over
    /// Ethernet, one MPI message (a few µs on the wire and switch, the rest in two stacks).
    static let defaultLatency = 25e-6
    /// Below this share of their cores the ranks ran on a busy machine: the report says so.
    static let quietShare = 0.9

    let measurement: ScalingMeasurement
    let instructionSet: InstructionSet
    let threads: Int
    let bucketBytes: Int
    /// How this job's own training steps sent their gradients (`--no-overlap`, `--allreduce-fp16`).
    let jobVariant: ExchangeVariant
    /// The fit to this job's all-reduce timings; nil on one rank.
    let fit: NetworkFit?
    /// Where the job's ranks talk: "shared memory", "TCP on one host", "a network of 2 hosts".
    let transport: String
    /// Whether the assumed links' α is this job's, and where it comes from.
    let latency: Double, latencySource: String
    /// The assumed links, in `--links`' order.
    let links: [Network]
    /// The link of the variants' table: the middle one of `links` (10 Gbit/s by default).
    let variantLink: Network

    init(_ measurement: ScalingMeasurement, options: ProjectionOptions, exchange: ExchangeOptions, instructionSet: InstructionSet,
         threads: Int, environment: [String: String]) throws {
        self.measurement = measurement
        self.instructionSet = instructionSet
        self.threads = threads
        bucketBytes = exchange.bucketBytes
        jobVariant = ExchangeVariant(overlap: exchange.overlap, halfPrecision: exchange.halfPrecision)
        let overTCP = measurement.hosts > 1 || Self.sharedMemoryExcluded(btl: environment["OMPI_MCA_btl"])
        transport = measurement.hosts > 1 ? "a network of \(measurement.hosts) hosts" : overTCP ? "TCP on one host" : "shared memory"
        fit = measurement.ranks > 1
            ? try AllReduceFit.fit(measurement.sweep, ranks: measurement.ranks,
                                   reductionSecondsPerByte: measurement.reduction.secondsPerByte, name: "measured: \(transport)")
            : nil
        if let given = options.latencyMicroseconds {
            (latency, latencySource) = (given * 1e-6, "--latency")
        } else if let fit, overTCP {
            (latency, latencySource) = (fit.network.latency, "measured on this job's TCP")
        } else {
            (latency, latencySource) = (Self.defaultLatency, "assumed: kernel TCP over Ethernet; --latency sets it")
        }
        let latency = latency
        let links = options.linkRates.map { Network.link(gigabits: $0, latency: latency) }
        self.links = links
        variantLink = links[links.count / 2]
    }

    /// Open MPI's `btl` selection without its shared-memory transport ("tcp,self", "^vader").
    static func sharedMemoryExcluded(btl: String?) -> Bool {
        guard let btl, !btl.isEmpty else { return false }
        let excluding = btl.hasPrefix("^")
        let names = Set(btl.drop { $0 == "^" }.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let namesSharedMemory = !names.isDisjoint(with: ["vader", "sm"])
        return excluding ? namesSharedMemory : !namesSharedMemory
    }

    /// This job's network, then the assumed links.
    var networks: [Network] { (fit.map { [$0.network] } ?? []) + links }

    func predict(_ model: ModelScaling, ranks: Int, on network: Network, _ variant: ExchangeVariant = .plain) -> StepPrediction {
        Projection.predict(model.profile, ranks: ranks, network: network, reduction: measurement.reduction, variant: variant,
                           bucketBytes: bucketBytes)
    }

    var lines: [String] {
        header + profiles + sweepLines + assumptions + measurement.models.flatMap(tables) + checks
    }

    private var header: [String] {
        let m = measurement
        let share = "the ranks had " + fixed(100 * min(1, m.cpuShare), 0) + " % of their cores while measuring (the lowest rank)"
        return ["gantry bench --project: \(m.ranks) rank(s) on \(m.hosts) host(s) (\(m.ranks > 1 ? transport : "no network")) x "
                + "\(threads) thread(s), isa=\(instructionSet.rawValue), synthetic images; " + share]
            + (m.cpuShare < Self.quietShare
                ? ["warning: the ranks did not have their cores to themselves (other processes, or more ranks than cores); "
                   + "a synchronous step waits for every descheduled rank, which the projection (of a quiet machine) "
                   + "leaves out: its check here is not a test of it"]
                : [])
    }

    private var profiles: [String] {
        ["compute per rank, the median of \(measurement.models.first?.computeSeconds.count ?? 0) rounds "
         + "(every rank at once, each on its own: no communication):"] + measurement.models.map { m in
            let p = m.profile, c = m.compute[0].configuration
            let exchanges = p.exchanges.map { "\($0.network.letter) " + fixed(Double($0.elements * 4) / 1e6, 2) + " MB" }
            let overlappable = p.exchanges.map { "\($0.network.letter) " + fixed($0.overlappableSeconds * 1e3, 2) + " ms" }
            return "  " + pad(p.model.rawValue, 6) + "batch \(p.batchSize), \(c.updateScheme.rawValue): step "
                + fixed(p.computeSeconds * 1e3, 3) + " ms " + rounds(m.computeSeconds) + "; gradients " + exchanges.joined(separator: ", ")
                + "; backward they could travel under " + overlappable.joined(separator: ", ")
        }
    }

    private var sweepLines: [String] {
        guard let fit else {
            return ["all-reduce: none on one rank; the table gives the assumed links only "
                    + "(run under mpirun -np 2 or more to measure this machine's)"]
        }
        let m = measurement, n = fit.network
        var lines = ["all-reduce on this job's network (\(transport), \(m.ranks) ranks), Float sum in place, "
                     + "the slowest rank's median after a barrier:",
                     "         bytes   measured µs   model µs   error   Open MPI 4.1 runs"]
        for (i, t) in m.sweep.enumerated() {
            let model = t.seconds * (1 + fit.relativeResiduals[i])
            lines.append(fixed(Double(t.bytes), 0, width: 14) + fixed(t.seconds * 1e6, 1, width: 14) + fixed(model * 1e6, 1, width: 11)
                         + percent(fit.relativeResiduals[i], width: 8) + "   " + fit.algorithms[i].rawValue)
        }
        let residuals = fit.relativeResiduals.map(abs)
        lines.append("  fit (least squares on relative error): α " + fixed(n.latency * 1e6, 2) + " µs, β "
                     + fixed(n.secondsPerByte * 1e9, 4) + " ns/byte (" + fixed(1 / n.secondsPerByte / 1e9, 2)
                     + " GB/s); |error| median " + fixed(100 * median(residuals), 1) + " %, largest "
                     + fixed(100 * (residuals.max() ?? 0), 1) + " %")
        for model in m.models {
            let checks = zip(model.profile.exchanges, model.exchangeTimings).map { exchange, timing in
                let algorithm = OpenMPIDecision.allReduce(ranks: m.ranks, elements: exchange.elements, elementBytes: 4, inPlace: true)
                let predicted = algorithm.terms(bytes: Double(timing.bytes), ranks: m.ranks)
                    .seconds(n, reductionSecondsPerByte: m.reduction.secondsPerByte)
                return "\(exchange.network.letter) " + fixed(timing.seconds * 1e6, 1) + " µs (model " + fixed(predicted * 1e6, 1)
                    + ", " + percent(predicted / timing.seconds - 1) + ", \(algorithm.rawValue))"
            }
            lines.append("  \(model.profile.model.rawValue)'s gradients alone: " + checks.joined(separator: ", "))
        }
        return lines
    }

    private var assumptions: [String] {
        let r = measurement.reduction
        return ["reduction, one thread: γ " + fixed(r.secondsPerByte * 1e9, 4) + " ns/byte (Float), "
                + fixed(r.halfSecondsPerByte * 1e9, 4) + " ns/byte (Float16 added in Float); Float16 conversion there and back "
                + fixed(r.halfConversionSecondsPerElement * 1e9, 3) + " ns/element",
                "assumed links: " + links.map(\.name).joined(separator: ", ") + ", one rank per host, β = 8 / rate (line rate), α "
                + fixed(latency * 1e6, 2) + " µs (\(latencySource))",
                "all-reduces: MPI_Iallreduce in place, which Gantry has Open MPI's coll/libnbc run by Rabenseifner's; "
                + "overlap: buckets of \(bucketBytes / 1024) KiB (--bucket-kb)"]
    }

    /// Per model: images/s and efficiency on every network (Float32, no overlap), then every
    /// variant on `variantLink`.
    private func tables(_ model: ModelScaling) -> [String] {
        let name = model.profile.model.rawValue, ranks = Projection.defaultRanks
        func table(_ title: String, _ headers: [String], _ cells: (Int) -> [StepPrediction]) -> [String] {
            // Columns right-aligned, each as wide as "  12345678 (0.95)" or its header.
            let widths = headers.map { max(19, $0.count) + 2 }
            func right(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
            return ["\(name), batch \(model.profile.batchSize) per rank: images/s (efficiency), \(title)",
                    "  ranks" + zip(headers, widths).map(right).joined()]
                + ranks.map { p in
                    fixed(Double(p), 0, width: 7) + zip(cells(p), widths).map { x, width in
                        right(fixed(x.imagesPerSecond, 0) + " (" + fixed(x.efficiency, 2) + ")", width)
                    }.joined()
                }
        }
        let variants = ExchangeVariant.all
        return table("Float32 gradients, no overlap", networks.map(\.name)) { p in networks.map { predict(model, ranks: p, on: $0) } }
            + table("at \(variantLink.name)", variants.map(Self.label)) { p in
                variants.map { predict(model, ranks: p, on: variantLink, $0) }
            }
    }

    /// The rounds' step times in milliseconds: "(1.21, 1.19, 1.30)".
    private func rounds(_ seconds: [Double]) -> String {
        "(" + seconds.map { fixed($0 * 1e3, 2) }.joined(separator: ", ") + ")"
    }

    static func label(_ v: ExchangeVariant) -> String {
        (v.halfPrecision ? "Float16" : "Float32") + (v.overlap ? " + overlap" : "")
    }

    /// The prediction at this job's ranks on its network beside the job's own step.
    private var checks: [String] {
        guard let fit else {
            return ["check: on one rank the prediction is the compute run itself; "
                    + "run under mpirun -np 2 for a check over this machine's network"]
        }
        let how = (jobVariant.halfPrecision ? "Float16" : "Float32") + (jobVariant.overlap ? ", overlapped" : ", no overlap")
        return ["check at this job's \(measurement.ranks) ranks on \(transport) (\(how), as its training steps ran), "
                + "against its own training steps, the median of the rounds:"]
            + measurement.models.compactMap { model in
                guard let measured = model.medianMeasured else { return nil }
                let predicted = predict(model, ranks: measurement.ranks, on: fit.network, jobVariant)
                return "  " + pad(model.profile.model.rawValue, 11) + "predicted " + fixed(predicted.imagesPerSecond, 0) + " images/s ("
                    + fixed(predicted.stepSeconds * 1e3, 3) + " ms a step), measured " + fixed(measured.imagesPerSecond, 0) + " ("
                    + fixed(measured.stepSeconds * 1e3, 3) + " ms " + rounds(model.measured.map(\.stepSeconds)) + "): "
                    + percent(predicted.imagesPerSecond / measured.imagesPerSecond - 1)
            }
    }

    /// One line per model: the inputs, the check, and for each network the images/s at 2 ranks
    /// and the efficiency at 1,024.
    var keyValues: [String] {
        measurement.models.map { model in
            let p = model.profile, r = measurement.reduction
            var pairs: [(String, String)] = [
                ("model", p.model.rawValue), ("ranks", "\(measurement.ranks)"), ("hosts", "\(measurement.hosts)"),
                ("threads", "\(threads)"), ("batch", "\(p.batchSize)"), ("isa", instructionSet.rawValue),
                ("compute_ms", fixed(p.computeSeconds * 1e3, 4)), ("cpu_share", fixed(measurement.cpuShare, 3)),
            ]
            for e in p.exchanges {
                let key = e.network.letter.lowercased()
                pairs += [("\(key)_elements", "\(e.elements)"), ("\(key)_overlappable_ms", fixed(e.overlappableSeconds * 1e3, 4))]
            }
            pairs += [("gamma_ns_per_byte", fixed(r.secondsPerByte * 1e9, 5)), ("link_latency_us", fixed(latency * 1e6, 3))]
            if let fit {
                pairs += [("alpha_us", fixed(fit.network.latency * 1e6, 3)), ("beta_ns_per_byte", fixed(fit.network.secondsPerByte * 1e9, 5))]
            }
            if let measured = model.medianMeasured, let fit {
                let predicted = predict(model, ranks: measurement.ranks, on: fit.network, jobVariant)
                pairs += [("predicted_images_per_s", fixed(predicted.imagesPerSecond, 1)),
                          ("measured_images_per_s", fixed(measured.imagesPerSecond, 1)),
                          ("error", fixed(predicted.imagesPerSecond / measured.imagesPerSecond - 1, 4))]
            }
            for network in networks {
                let key = Self.key(network)
                pairs += [("\(key)_2_images_per_s", fixed(predict(model, ranks: 2, on: network).imagesPerSecond, 1)),
                          ("\(key)_1024_efficiency", fixed(predict(model, ranks: 1024, on: network).efficiency, 4))]
            }
            return "project " + pairs.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
        }
    }

    /// "measured", "10g", "2.5g".
    static func key(_ network: Network) -> String {
        network.name.hasPrefix("measured") ? "measured" : network.name.replacingOccurrences(of: " Gbit/s", with: "g")
    }

    // MARK: - Files

    /// Every prediction: a row per model, network, variant and ranks.
    var csv: String {
        var rows = ["model,network,latency_s,seconds_per_byte,ranks,overlap,fp16,bucket_bytes,step_s,compute_s,"
                    + "communication_s,exposed_s,conversion_s,images_per_s,efficiency,algorithms"]
        for model in measurement.models {
            for network in networks {
                for variant in ExchangeVariant.all {
                    for p in Projection.defaultRanks {
                        let x = predict(model, ranks: p, on: network, variant)
                        let fields: [String] = [
                            model.profile.model.rawValue, network.name, "\(network.latency)", "\(network.secondsPerByte)", "\(p)",
                            variant.overlap ? "1" : "0", variant.halfPrecision ? "1" : "0", "\(bucketBytes)", "\(x.stepSeconds)",
                            "\(x.computeSeconds)", "\(x.communicationSeconds)", "\(x.exposedSeconds)", "\(x.conversionSeconds)",
                            "\(x.imagesPerSecond)", "\(x.efficiency)", x.algorithms.map(\.rawValue).joined(separator: "; "),
                        ]
                        rows.append(fields.joined(separator: ","))
                    }
                }
            }
        }
        return rows.joined(separator: "\n") + "\n"
    }

    /// A gnuplot script with its data inline: one panel per model, efficiency against ranks on
    /// a log₂ axis, a colour per network; solid Float32 without overlap, dashed Float16 with it.
    func gnuplotScript(png: String) -> String {
        let best = ExchangeVariant(overlap: true, halfPrecision: true)
        var script = ["set terminal pngcairo size \(560 * measurement.models.count),480 font ',10'",
                      "set output '\(png.replacingOccurrences(of: "'", with: "''"))'"]
        for (m, model) in measurement.models.enumerated() {
            for (n, network) in networks.enumerated() {
                for (v, variant) in [ExchangeVariant.plain, best].enumerated() {
                    script.append("$m\(m)n\(n)v\(v) << EOD")
                    script += Projection.defaultRanks.map { "\($0) \(predict(model, ranks: $0, on: network, variant).efficiency)" }
                    script.append("EOD")
                }
            }
        }
        script += ["set multiplot layout 1,\(measurement.models.count)", "set logscale x 2", "set xrange [1:1024]",
                   "set yrange [0:1.05]", "set xlabel 'ranks (one per host)'", "set ylabel 'efficiency (single-rank step / step)'",
                   "set key below horizontal", "set grid"]
        for (m, model) in measurement.models.enumerated() {
            script.append("set title '\(model.profile.model.rawValue), batch \(model.profile.batchSize) per rank: "
                          + "solid Float32, dashed Float16 + overlap'")
            let series = networks.indices.flatMap { n in
                ["$m\(m)n\(n)v0 with linespoints lc \(n + 1) dt 1 pt 7 ps 0.6 title '\(networks[n].name)'",
                 "$m\(m)n\(n)v1 with linespoints lc \(n + 1) dt 2 pt 7 ps 0.6 notitle"]
            }
            script.append("plot " + series.joined(separator: ", \\\n     "))
        }
        script.append("unset multiplot")
        return script.joined(separator: "\n") + "\n"
    }

    /// Writes the CSV and the gnuplot script beside `plot` and draws the plot if gnuplot is
    /// on the PATH; returns what it did, in words.
    func writeFiles(plot: String) throws -> [String] {
        let base = plot.hasSuffix(".png") ? String(plot.dropLast(4)) : plot
        let csvPath = base + ".csv", scriptPath = base + ".gp"
        try AtomicFileWriter.write(Array(csv.utf8), to: csvPath)
        try AtomicFileWriter.write(Array(gnuplotScript(png: plot).utf8), to: scriptPath)
        guard let gnuplot = Self.findExecutable("gnuplot") else {
            return ["table: \(csvPath); plot: not drawn, gnuplot is not installed (Debian: apt-get install gnuplot-nox), "
                    + "then: gnuplot \(scriptPath)"]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: gnuplot)
        process.arguments = [scriptPath]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            return ["table: \(csvPath); plot: gnuplot \(scriptPath) failed (exit \(process.terminationStatus)): "
                    + message.split(separator: "\n").suffix(3).joined(separator: " / ")]
        }
        return ["table: \(csvPath); plot: \(plot) (efficiency against ranks; its script \(scriptPath))"]
    }

    /// The first `name` on the PATH that may be executed.
    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// `x` as a signed percentage with one decimal: "+3.2 %".
func percent(_ x: Double, width: Int = 0) -> String {
    let text = (x >= 0 ? "+" : "") + String(format: "%.1f", 100 * x) + " %"
    return String(repeating: " ", count: max(0, width - text.count)) + text
}

/// The middle value (the upper one of an even count); 0 for none.
func median(_ values: [Double]) -> Double {
    values.isEmpty ? 0 : values.sorted()[values.count / 2]
}
