// The benchmark's go-control-plane peer: serves, over ADS (state of the world and delta), whatever
// resources the benchmark hands it, through go-control-plane's own snapshot cache. The benchmark builds
// the resources with our snapshot builders and encodes them with our codec, so both control planes send
// Envoy the same bytes; this program only decodes them and calls SetSnapshot.
//
// stdin, one command a line:
//
//	load <file>   JSON {"versions": {"<type url>": "<version>"}, "resources": {"<type url>": ["<base64 protobuf>", ...]}}
//	              Each type keeps its own version (ours: a hash of that type's resources), so a change
//	              to endpoints re-sends endpoints only, as our control plane does.
//	quit
//
// -lrs-interval-ms N (N > 0) also serves Envoy's load reports (LRS): it asks for every cluster every N ms, as
// our control plane does (its default: 1,000 ms), and discards them. The benchmark's Envoy bootstrap asks both
// control planes for load reporting; without this Envoy's LRS stream to this peer fails and Envoy builds no
// reports, so it would do less work beside this peer than beside ours.
//
// -trace also prints "trace response <stream> <type url> <version> names=<n> <ms>" for every response sent,
// "trace request <stream> <type url> names=<n> <ms>" for every request received and "trace load-start <ms>"
// when a load command is read (bench/xds-trace.ts lays them out as a timeline).
//
// stdout, one event a line (times are epoch milliseconds, the same clock as the benchmark's):
//
//	listening <port>
//	set <version> <ms>                          the snapshot is in the cache
//	ack <stream> <type url> <version> <ms>      a request that ACKs <version> (SotW or delta)
//	nack <stream> <type url> <ms> <message>
//	error <message>
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	lrs "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	server "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// oneGroup puts every node in one snapshot group, as our control plane does in file mode.
type oneGroup struct{}

func (oneGroup) ID(*core.Node) string { return "all" }

type output struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (o *output) line(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format+"\n", args...)
	o.w.Flush()
}

func nowMs() float64 { return float64(time.Now().UnixNano()) / 1e6 }

type snapshotFile struct {
	Versions  map[string]string   `json:"versions"`
	Resources map[string][]string `json:"resources"`
}

func load(path string) (*cache.Snapshot, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f snapshotFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	snapshot := &cache.Snapshot{}
	for typeURL, encoded := range f.Resources {
		list := make([]types.Resource, 0, len(encoded))
		for _, b64 := range encoded {
			value, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", typeURL, err)
			}
			msg, err := anypb.UnmarshalNew(&anypb.Any{TypeUrl: typeURL, Value: value}, proto.UnmarshalOptions{})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", typeURL, err)
			}
			list = append(list, msg)
		}
		index := cache.GetResponseType(typeURL)
		if index == types.UnknownType {
			return nil, fmt.Errorf("unknown resource type %s", typeURL)
		}
		version, ok := f.Versions[typeURL]
		if !ok {
			return nil, fmt.Errorf("no version for %s", typeURL)
		}
		snapshot.Resources[index] = cache.NewResources(version, list)
	}
	return snapshot, nil
}

// loadReportSink asks Envoy for load reports of every cluster at an interval and drops them.
type loadReportSink struct {
	lrs.UnimplementedLoadReportingServiceServer
	interval time.Duration
}

func (l loadReportSink) StreamLoadStats(stream lrs.LoadReportingService_StreamLoadStatsServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if err := stream.Send(&lrs.LoadStatsResponse{SendAllClusters: true, LoadReportingInterval: durationpb.New(l.interval)}); err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
}

func main() {
	port := flag.Int("port", 0, "ADS port on 127.0.0.1 (0: any free port)")
	acks := flag.Bool("acks", true, "print a line for every ACK and NACK")
	trace := flag.Bool("trace", false, "also print a line for every response sent (to trace a push)")
	lrsIntervalMs := flag.Int("lrs-interval-ms", 0, "serve load reports (LRS), asking for every cluster every N ms (0: no LRS service)")
	flag.Parse()
	out := &output{w: bufio.NewWriter(os.Stdout)}

	snapshots := cache.NewSnapshotCache(true, oneGroup{}, nil)
	ack := func(stream int64, typeURL, version, nonce string, errorDetail interface{ GetMessage() string }) {
		if !*acks || nonce == "" {
			return
		}
		if errorDetail != nil && errorDetail.GetMessage() != "" {
			out.line("nack %d %s %.3f %s", stream, typeURL, nowMs(), strings.ReplaceAll(errorDetail.GetMessage(), "\n", " "))
			return
		}
		out.line("ack %d %s %s %.3f", stream, typeURL, version, nowMs())
	}
	callbacks := server.CallbackFuncs{
		StreamRequestFunc: func(stream int64, req *discovery.DiscoveryRequest) error {
			if *trace {
				out.line("trace request %d %s names=%d %.3f", stream, req.GetTypeUrl(), len(req.GetResourceNames()), nowMs())
			}
			var detail interface{ GetMessage() string }
			if req.GetErrorDetail() != nil {
				detail = req.GetErrorDetail()
			}
			ack(stream, req.GetTypeUrl(), req.GetVersionInfo(), req.GetResponseNonce(), detail)
			return nil
		},
		StreamResponseFunc: func(_ context.Context, stream int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
			if *trace {
				out.line("trace response %d %s %s names=%d %.3f", stream, resp.GetTypeUrl(), resp.GetVersionInfo(), len(resp.GetResources()), nowMs())
			}
		},
		StreamDeltaRequestFunc: func(stream int64, req *discovery.DeltaDiscoveryRequest) error {
			var detail interface{ GetMessage() string }
			if req.GetErrorDetail() != nil {
				detail = req.GetErrorDetail()
			}
			// A delta ACK names no version; the benchmark pairs it with the last snapshot set.
			ack(stream, req.GetTypeUrl(), "-", req.GetResponseNonce(), detail)
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := server.NewServer(ctx, snapshots, callbacks)
	grpcServer := grpc.NewServer(grpc.MaxConcurrentStreams(1_000_000))
	discovery.RegisterAggregatedDiscoveryServiceServer(grpcServer, srv)
	if *lrsIntervalMs > 0 {
		lrs.RegisterLoadReportingServiceServer(grpcServer, loadReportSink{interval: time.Duration(*lrsIntervalMs) * time.Millisecond})
	}

	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		out.line("error %s", err)
		os.Exit(1)
	}
	go func() { _ = grpcServer.Serve(listener) }()
	out.line("listening %d", listener.Addr().(*net.TCPAddr).Port)

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "load":
			if *trace {
				out.line("trace load-start %.3f", nowMs())
			}
			if len(fields) != 2 {
				out.line("error load needs one file")
				continue
			}
			snapshot, err := load(fields[1])
			if err == nil {
				err = snapshots.SetSnapshot(ctx, "all", snapshot)
			}
			if err != nil {
				out.line("error %s", strings.ReplaceAll(err.Error(), "\n", " "))
				continue
			}
			out.line("set %s %.3f", snapshot.GetVersion(resource.EndpointType), nowMs())
		case "quit":
			grpcServer.Stop()
			return
		default:
			out.line("error unknown command %q", fields[0])
		}
	}
	// stdin closed: the benchmark is gone.
	grpcServer.Stop()
}
