//lint:file-ignore ST1005 the stand-in reproduces Spark's own messages verbatim

package standin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type submitArgs struct {
	master, deployMode, name, class string
	conf                            map[string]string
	pyFiles, jars, files            string
	kill, status                    string
	version                         bool
	resource                        string
	appArgs                         []string
}

func parseSubmit(args []string) (submitArgs, error) {
	s := submitArgs{conf: map[string]string{}, deployMode: "client"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			s.resource = a
			s.appArgs = args[i+1:]
			break
		}
		if a == "--version" {
			s.version = true
			continue
		}
		if i+1 >= len(args) {
			return s, fmt.Errorf("Error: Missing argument for option '%s'", a)
		}
		v := args[i+1]
		i++
		switch a {
		case "--master":
			s.master = v
		case "--deploy-mode":
			s.deployMode = v
		case "--name":
			s.name = v
		case "--class":
			s.class = v
		case "--conf", "-c":
			k, val, ok := strings.Cut(v, "=")
			if !ok {
				return s, fmt.Errorf("Error: Spark config without '=': %s", v)
			}
			s.conf[k] = val
		case "--py-files":
			s.pyFiles = v
		case "--jars":
			s.jars = v
		case "--files":
			s.files = v
		case "--kill":
			s.kill = v
		case "--status":
			s.status = v
		default:
			return s, fmt.Errorf("Error: Unrecognized option: %s", a)
		}
	}
	return s, nil
}

// submit is the stand-in bin/spark-submit.
func submit(args []string, environ []string) int {
	s, err := parseSubmit(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env := environMap(environ)
	if s.version {
		fmt.Fprintf(os.Stderr, "Welcome to Spark version %s (sparkplane test stand-in)\n", env["STANDIN_VERSION"])
		return 0
	}
	conf := sparkConf(envFunc(env), s.conf)
	if s.name != "" {
		conf["spark.app.name"] = s.name
	}
	hp, err := parseMasterURL(s.master)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error: "+err.Error())
		return 1
	}
	secret := ""
	if conf["spark.authenticate"] == "true" {
		secret = firstNonEmpty(env["_SPARK_AUTH_SECRET"], conf["spark.authenticate.secret"])
	}
	rpc := &rpcClient{master: hp, secret: secret, http: &http.Client{Timeout: 5 * time.Second}}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	switch {
	case s.kill != "":
		return restKill(ctx, hp, s.kill)
	case s.status != "":
		var resp struct {
			Found  bool
			State  string
			Worker string
		}
		if err := rpc.call(ctx, "/driver-status", map[string]string{"ID": s.status}, &resp); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if !resp.Found {
			logf("ERROR ClientEndpoint: ERROR: Cluster master did not recognize %s", s.status)
			return 255
		}
		logf("INFO ClientEndpoint: State of driver %s is %s", s.status, resp.State)
		return 0
	}
	if s.resource == "" {
		fmt.Fprintln(os.Stderr, "Error: Must specify a primary resource (JAR or Python or R file)")
		return 1
	}
	isPython := strings.HasSuffix(strings.ToLower(s.resource), ".py")
	if s.deployMode == "cluster" {
		if isPython {
			fmt.Fprintln(os.Stderr, "Error: Cluster deploy mode is currently not supported for python applications on standalone clusters.")
			return 1
		}
		return submitCluster(ctx, rpc, s, conf, env)
	}
	if conf["spark.app.name"] == "" {
		conf["spark.app.name"] = firstNonEmpty(s.class, filepath.Base(s.resource))
	}
	d := &driverProcess{conf: conf, env: env, rpc: rpc, stdout: os.Stdout, stderr: os.Stderr,
		prog: loadProgram(s.resource, s.appArgs), name: conf["spark.app.name"]}
	if err := d.run(ctx); err != nil {
		if ctx.Err() != nil {
			return 143 // the JVM's status after SIGTERM
		}
		return 1
	}
	return 0
}

// submitCluster is the legacy standalone client (ClientApp): it hands the driver to the master,
// logs the reply, reports the state once and exits.
func submitCluster(ctx context.Context, rpc *rpcClient, s submitArgs, conf, env map[string]string) int {
	logf("INFO Utils: Successfully started service 'driverClient' on port %d.", 35725)
	var resp struct {
		Success  bool
		DriverID string
		Message  string
	}
	desc := driverDesc{MainClass: s.class, Resource: s.resource, Args: s.appArgs, Conf: conf, Env: env,
		Cores: atoiOr(conf["spark.driver.cores"], 1), MemoryMiB: memoryMiB(conf["spark.driver.memory"], 1024)}
	if err := rpc.call(ctx, "/submit-driver", desc, &resp); err != nil {
		logf("ERROR ClientEndpoint: %v", err)
		return 1
	}
	logf("INFO ClientEndpoint: ... waiting before polling master for driver state")
	logf("INFO ClientEndpoint: %s", resp.Message)
	if !resp.Success {
		return 255
	}
	var st struct{ State string }
	rpc.call(ctx, "/driver-status", map[string]string{"ID": resp.DriverID}, &st)
	logf("INFO ClientEndpoint: State of %s is %s", resp.DriverID, st.State)
	return 0
}

func atoiOr(s string, def int) int {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		return def
	}
	return n
}

// restKill is spark-submit --kill on a spark:// master: like Spark (SparkSubmit.kill →
// RestSubmissionClient) it asks the REST submission server at the address given, whatever the
// master's RPC port is, and fails when no REST server answers there.
func restKill(ctx context.Context, hostPort, id string) int {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+hostPort+"/v1/submissions/kill/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	var body struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
	}
	if err == nil {
		defer resp.Body.Close()
		err = json.NewDecoder(resp.Body).Decode(&body)
	}
	if err != nil {
		logf("WARN RestSubmissionClient: Unable to connect to server spark://%s.", hostPort)
		fmt.Fprintln(os.Stderr, "Exception in thread \"main\" org.apache.spark.deploy.rest.SubmitRestConnectionException: Unable to connect to server")
		return 1
	}
	logf("INFO RestSubmissionClient: %s", body.Message)
	if !body.Success {
		return 1
	}
	return 0
}

// legacyClient is org.apache.spark.deploy.Client (spark-class), the standalone client that Spark's
// docs give for killing a driver: `Client kill <master> <driver id>`, over the master's RPC. As a
// plain spark-class program it reads no spark-defaults.conf, only -Dspark.* system properties.
func legacyClient(ctx context.Context, args []string, env map[string]string) error {
	if len(args) != 3 || args[0] != "kill" {
		return fmt.Errorf("Usage: Driver [options] kill <master> <driver-id> (the stand-in knows kill only)")
	}
	hp, err := parseMasterURL(args[1])
	if err != nil {
		return err
	}
	conf := sparkConf(envFunc(map[string]string{"JDK_JAVA_OPTIONS": env["JDK_JAVA_OPTIONS"], "_JAVA_OPTIONS": env["_JAVA_OPTIONS"]}), nil)
	secret := ""
	if conf["spark.authenticate"] == "true" {
		secret = firstNonEmpty(env["_SPARK_AUTH_SECRET"], conf["spark.authenticate.secret"])
	}
	rpc := &rpcClient{master: hp, secret: secret, http: &http.Client{Timeout: 5 * time.Second}}
	var resp struct {
		Success bool
		Message string
	}
	if err := rpc.call(ctx, "/kill-driver", map[string]string{"ID": args[2]}, &resp); err != nil {
		return err
	}
	logf("INFO ClientEndpoint: %s", resp.Message)
	if !resp.Success {
		return fmt.Errorf("%s", resp.Message)
	}
	return nil
}
